"""What a run cost and what it delivered: the figures a backtest compares policies by.

The paper's claim is more GPU utilisation at unchanged SLOs, so a run is summarised by the
GPU-hours it held, how busy those GPUs were, and the tail latencies its requests saw.
"""

from __future__ import annotations

import polars as pl

from scheduler import ROLES

#: Columns of :func:`summarise_run`.
RUN_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "run": pl.String(),
    "gpu_hours_prefill": pl.Float64(),
    "gpu_hours_decode": pl.Float64(),
    "gpu_util_prefill": pl.Float64(),
    "gpu_util_decode": pl.Float64(),
    "gpu_util": pl.Float64(),
    "ttft_p99_s": pl.Float64(),
    "tpot_p99_s": pl.Float64(),
    "requests": pl.Int64(),
}


def summarise_run(
    instance_samples: pl.DataFrame, requests: pl.DataFrame, *, label: str
) -> pl.DataFrame:
    """One row of :data:`RUN_SUMMARY_SCHEMA` for a run's telemetry and request outcomes.

    ``instance_samples`` is the canonical table, ``requests`` the per-request outcomes
    (:attr:`simulator.SimulationResult.requests`, or the stored ``request_outcomes``).

    GPU-hours count every GPU an instance held while it reported (starting and draining
    included: they are paid for); utilisation is the GPU-time-weighted mean of
    ``gpu_util_ratio`` over those same GPU-seconds, per role and overall. TTFT and TPOT
    (time per output token after the first) are the 99th percentiles over requests; TPOT
    counts requests with at least two output tokens.
    """
    samples = instance_samples.with_columns(
        gpu_s=pl.col("interval_s") * pl.col("gpus_per_instance")
    ).with_columns(busy_s=pl.col("gpu_s") * pl.col("gpu_util_ratio"))
    totals = samples.group_by("role").agg(pl.col("gpu_s").sum(), pl.col("busy_s").sum())
    gpu_s = dict(totals.select("role", "gpu_s").iter_rows())
    busy_s = dict(totals.select("role", "busy_s").iter_rows())
    tpot = requests.filter(pl.col("output_tokens") > 1).select(
        (pl.col("finish_s") - pl.col("first_token_s")) / (pl.col("output_tokens") - 1)
    )
    row = {
        "run": label,
        **{f"gpu_hours_{role}": gpu_s.get(role, 0.0) / 3600 for role in ROLES},
        **{
            f"gpu_util_{role}": _ratio(busy_s.get(role, 0.0), gpu_s.get(role, 0.0))
            for role in ROLES
        },
        "gpu_util": _ratio(sum(busy_s.values()), sum(gpu_s.values())),
        "ttft_p99_s": requests["ttft_s"].quantile(0.99),
        "tpot_p99_s": tpot.to_series().quantile(0.99),
        "requests": requests.height,
    }
    return pl.DataFrame([row], schema=RUN_SUMMARY_SCHEMA)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
