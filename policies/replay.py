"""Open-loop replay of the coordinated controller over recorded telemetry.

The run was recorded at whatever size it had, so the controller's actions never reach the
cluster: each decision sees the recorded decode TPS, not the TPS its own earlier decisions
would have produced. This shows what the controller would have asked for and when; the closed
loop (decisions -> placement -> simulated cluster -> telemetry) replaces it in the backtest.
"""

from __future__ import annotations

import math

import polars as pl

from policies.config import CoordinatedPolicyConfig
from policies.coordinated import HOLD, Decision, PoolCounts, decide
from policies.observation import decode_tps_windows
from signals import role_series

#: Columns and types of the frame :func:`replay_decisions` returns.
DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "service": pl.String(),
    "decode_tps_observed": pl.Float64(),
    "current_prefill": pl.Int64(),
    "current_decode": pl.Int64(),
    "target_prefill": pl.Int64(),
    "target_decode": pl.Int64(),
    "action": pl.String(),
    "reason": pl.String(),
    "next_prefill": pl.Int64(),
    "next_decode": pl.Int64(),
}


def replay_decisions(
    instance_samples: pl.DataFrame, config: CoordinatedPolicyConfig, *, service: str
) -> pl.DataFrame:
    """Replay the coordinated controller over one service's recorded run, interval by interval.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table; aggregated with :func:`signals.role_series`.
    config : CoordinatedPolicyConfig
        The controller's target, ratio, bounds, hysteresis and control interval.
    service : str
        The service to replay.

    Returns
    -------
    pl.DataFrame
        One row per control interval with data, in time order, with the columns of
        :data:`DECISIONS_SCHEMA`: ``ts`` (UTC) is the end of the control interval, when the
        decision is taken; ``decode_tps_observed`` the decode pool's mean total TPS over it;
        ``current_*`` the counts before the decision; ``target_*`` the counts
        :func:`policies.pool_targets` wants; ``action`` and ``reason`` from
        :func:`policies.decide`; ``next_*`` the counts after the decision (the targets after a
        scale action, the current counts after a hold): what the cluster is asked to run.

    Raises
    ------
    ValueError
        If the service has no decode samples.

    Notes
    -----
    Control intervals start at the service's first sample and are ``control_interval_s`` long;
    the observation is :func:`policies.observation.decode_tps_windows`, and intervals without
    decode samples give no decision (nothing was observed). The starting counts are the
    instances of each role reporting at the first sample, ready or not; after a scale action
    the current counts become its targets, as if it had been applied at once (open loop).

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.3 (coordinated proportional control), §5.5 (hysteresis).
    """
    series = role_series(instance_samples).filter(pl.col("service") == service)
    decode = series.filter(pl.col("role") == "decode")
    if decode.is_empty():
        raise ValueError(f"instance_samples has no decode samples for service {service!r}")
    start = series["ts"].min()
    windows = decode_tps_windows(
        instance_samples, service=service, start=start, control_interval_s=config.control_interval_s
    )
    first = series.filter(pl.col("ts") == start)
    current = PoolCounts(
        prefill=_instances(first, "prefill"),
        decode=_instances(first, "decode"),
    )
    rows = []
    last_action_window = None
    for window, decode_tps in windows.iter_rows():
        since_last_action_s = (
            math.inf
            if last_action_window is None
            else (window - last_action_window) * config.control_interval_s
        )
        decision = decide(decode_tps, current, config, since_last_action_s=since_last_action_s)
        rows.append({"window": window, **decision_fields(decode_tps, current, decision)})
        if decision.action != HOLD:
            current = decision.target
            last_action_window = window
        rows[-1] |= {"next_prefill": current.prefill, "next_decode": current.decode}
    return (
        pl.DataFrame(rows)
        .with_columns(
            ts=pl.lit(start)
            + pl.duration(seconds=(pl.col("window") + 1) * config.control_interval_s),
            service=pl.lit(service),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in DECISIONS_SCHEMA.items()])
    )


def decision_fields(decode_tps: float, current: PoolCounts, decision: Decision) -> dict:
    """The :data:`DECISIONS_SCHEMA` columns one decision fills: all but ``ts``, ``service``
    and the ``next_*`` counts, which depend on what the decision's action reached."""
    return {
        "decode_tps_observed": decode_tps,
        "current_prefill": current.prefill,
        "current_decode": current.decode,
        "target_prefill": decision.target.prefill,
        "target_decode": decision.target.decode,
        "action": decision.action,
        "reason": decision.reason,
    }


def _instances(series_at_ts: pl.DataFrame, role: str) -> int:
    """Instances of ``role`` reporting in a one-timestamp slice of the role series (0 if none)."""
    counts = series_at_ts.filter(pl.col("role") == role)["instances"]
    return int(counts.item()) if counts.len() else 0
