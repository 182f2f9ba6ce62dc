"""Agreement of the fluid model (:mod:`simulator.fluid`) with the request-level engine.

Both modes replay the same requests on the same cluster; the fluid model sees them binned
into control intervals (:func:`simulator.fluid_load.load_from_requests`). Per interval and
role, the comparison takes the pool totals of prefill and decode tokens/s, the mean GPU
utilisation and SM activity over the role's instances, the pool-wide TTFT p50 (over every
request whose first token came in the interval) and the mean over decode instances of their
TBT p50. Agreement is the mean absolute relative error over intervals where the request-level
value is positive and both are measured.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from simulator.cluster import ClusterSpec
from simulator.engine import SimulationResult, simulate
from simulator.fluid import FluidResult, simulate_fluid
from simulator.fluid_load import load_from_requests

#: (role, column, how instances combine) compared per interval.
COMPARED = (
    ("prefill", "prefill_tps_total", "sum"),
    ("prefill", "gpu_util_ratio", "mean"),
    ("prefill", "sm_active_ratio", "mean"),
    ("decode", "decode_tps", "sum"),
    ("decode", "gpu_util_ratio", "mean"),
    ("decode", "sm_active_ratio", "mean"),
    ("decode", "tbt_p50_s", "mean"),
)


def run_both(
    requests: pl.DataFrame, cluster: ClusterSpec, start: datetime, interval_s: float = 15.0
) -> tuple[SimulationResult, FluidResult]:
    """Replay ``requests`` request by request and as a fluid, on the same interval grid."""
    exact = simulate(requests, cluster, service="validation", start=start, interval_s=interval_s)
    load = load_from_requests(requests, start, interval_s, exact.service_load.height)
    return exact, simulate_fluid(load, cluster)


def agreement(exact: SimulationResult, fluid: FluidResult) -> dict[str, float]:
    """Mean absolute relative error per compared quantity, keyed ``{role}.{column}``, plus
    ``prefill.ttft_p50_s`` (pool-wide median)."""
    interval_s = fluid.load.interval_s
    per_role = {
        "exact": exact.instance_samples,
        "fluid": fluid.instance_samples("validation"),
    }
    out = {}
    for role, column, how in COMPARED:
        frames = [
            frame.filter(pl.col("role") == role)
            .group_by("ts")
            .agg(getattr(pl.col(column), how)().alias(name))
            for name, frame in per_role.items()
        ]
        joined = frames[0].join(frames[1], on="ts")
        out[f"{role}.{column}"] = _mare(joined["exact"], joined["fluid"])
    first = exact.requests.with_columns(bin=(pl.col("first_token_s") // interval_s).cast(pl.Int64))
    median = first.group_by("bin").agg(exact=pl.col("ttft_s").median())
    pool = fluid.pool_samples("validation").filter(pl.col("role") == "prefill")
    fluid_ttft = pl.DataFrame(
        {"bin": np.arange(pool.height, dtype=np.int64), "fluid": pool["ttft_p50_s"]}
    )
    joined = median.join(fluid_ttft, on="bin")
    out["prefill.ttft_p50_s"] = _mare(joined["exact"], joined["fluid"])
    return out


def _mare(exact: pl.Series, fluid: pl.Series) -> float:
    x = exact.cast(pl.Float64).to_numpy()
    y = fluid.cast(pl.Float64).to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    return round(float(np.mean(np.abs(y[ok] - x[ok]) / x[ok])), 4)
