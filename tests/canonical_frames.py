"""Small hand-built canonical telemetry frames for the tests of signals, policies and dashboards.

Each builder returns a frame that passes ``telemetry.schema.conform``, so a test states only the
columns it is about and every other metric takes a neutral default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl

from telemetry.schema import (
    INSTANCE_METRIC_COLUMNS,
    INSTANCE_SAMPLES,
    LATENCY_COLUMNS,
    SERVICE_LOAD,
    conform,
)

START = datetime(2025, 3, 1, tzinfo=UTC)

Values = float | None | Sequence[float | None]


def timestamps(intervals: int, interval_s: float = 15.0) -> list[datetime]:
    """Interval start times from :data:`START`."""
    return [START + timedelta(seconds=i * interval_s) for i in range(intervals)]


def _per_interval(value: Values, intervals: int) -> list:
    if isinstance(value, Sequence):
        assert len(value) == intervals, f"{len(value)} values for {intervals} intervals"
        return list(value)
    return [value] * intervals


def instance_samples(
    *,
    role: str,
    instances: int,
    intervals: int,
    service: str = "svc",
    interval_s: float = 15.0,
    gpu_type: str = "H20",
    ready: bool | Sequence[bool] = True,
    **metrics: Values,
) -> pl.DataFrame:
    """``instances`` identical instances of one role; each metric is a scalar or one value per
    interval (per instance). Unnamed metrics are 0, latency quantiles null."""
    unknown = set(metrics) - set(INSTANCE_METRIC_COLUMNS)
    assert not unknown, f"not metric columns: {unknown}"
    ts = timestamps(intervals, interval_s)
    ready_flags = list(ready) if isinstance(ready, Sequence) else [ready] * instances
    rows = []
    for index in range(instances):
        columns = {
            name: _per_interval(
                metrics.get(name, None if name in LATENCY_COLUMNS else 0.0), intervals
            )
            for name in INSTANCE_METRIC_COLUMNS
        }
        rows.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "interval_s": [interval_s] * intervals,
                    "service": [service] * intervals,
                    "role": [role] * intervals,
                    "instance_id": [f"{service}-{role}-{index}"] * intervals,
                    "gpu_type": [gpu_type] * intervals,
                    "gpus_per_instance": [1] * intervals,
                    "ready": [ready_flags[index]] * intervals,
                    **columns,
                },
                schema_overrides={c: pl.Float64 for c in INSTANCE_METRIC_COLUMNS},
            )
        )
    return conform(pl.concat(rows), INSTANCE_SAMPLES)


def service_load(
    output_tps: Sequence[float],
    *,
    service: str = "svc",
    interval_s: float = 15.0,
    input_tps: Sequence[float] | None = None,
) -> pl.DataFrame:
    """Offered load per interval; input TPS defaults to twice the output TPS."""
    intervals = len(output_tps)
    inputs = list(input_tps) if input_tps is not None else [2.0 * x for x in output_tps]
    frame = pl.DataFrame(
        {
            "ts": timestamps(intervals, interval_s),
            "interval_s": [interval_s] * intervals,
            "service": [service] * intervals,
            "request_rate_rps": [x / 100.0 for x in output_tps],
            "input_tps": inputs,
            "output_tps": list(output_tps),
        }
    )
    return conform(frame, SERVICE_LOAD)
