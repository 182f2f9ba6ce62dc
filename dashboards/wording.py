"""How the report writes shares and their differences, one way on the whole page.

Attainments sit near 100%, so they get two decimals (99.53%, not 100%); a difference of shares
is in percentage points, signed, so a gain never reads as a relative change. Statistics that
are undefined read ``n/a``, and every axis states its unit (:data:`UNITS`).
"""

from __future__ import annotations

import math


def percent(share: float, digits: int = 2) -> str:
    """``0.99531`` -> ``99.53%``."""
    return f"{100 * share:.{digits}f}%"


def points(delta: float, digits: int = 2, *, signed: bool = True) -> str:
    """A difference of shares in percentage points: ``0.0244`` -> ``+2.44 points``
    (``2.44 points`` unsigned, for a distance such as a miss)."""
    sign = "+" if signed else ""
    return f"{100 * delta:{sign}.{digits}f} points"


def ci(low: float, high: float, digits: int = 1) -> str:
    """A 95% confidence interval: ``[2,090.1 to 2,104.5]`` (a comma would read as a thousands
    separator)."""
    return f"[{low:,.{digits}f} to {high:,.{digits}f}]"


def number(value: float | None, digits: int = 3) -> str:
    """A statistic to ``digits`` significant figures; ``n/a`` where it is undefined (null or
    NaN, e.g. a breach AUC on data with no breach), so a gap reads as one and never as 0."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}g}"


#: How the page names each offered-load column of ``service_load``, with its unit.
LOAD_NAMES = {
    "request_rate_rps": "offered requests/s",
    "input_tps": "offered prompt tokens/s",
    "output_tps": "offered output tokens/s",
}

#: The unit of each candidate signal (``telemetry.schema.INSTANCE_METRIC_COLUMNS``), as
#: docs/telemetry-schema.md states it.
UNITS = {
    "gpu_util_ratio": "ratio",
    "sm_active_ratio": "ratio",
    "prefill_tps_cache_missed": "tokens/s",
    "prefill_tps_total": "tokens/s",
    "decode_tps": "tokens/s",
    **{f"{latency}_p{q}_s": "s" for latency in ("ttft", "tbt") for q in (50, 90, 99)},
    "queue_depth": "requests",
    "running_requests": "requests",
    "kv_usage_ratio": "ratio",
}
