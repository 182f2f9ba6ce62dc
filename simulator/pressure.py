"""Pressure tests: the throughput a cluster sustains when offered more load than it can serve.

The paper picks its P/D ratio by pressure testing (Fig. 4, Algorithm 1): drive a fixed number
of instances past saturation and read the throughput each split sustains. Here the load is a
real trace with its arrivals compressed until it exceeds the cluster's capacity; what the
cluster then serves is set by its bottleneck stage, so nothing about the split is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from simulator.cluster import ClusterSpec
from simulator.engine import simulate

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SustainedThroughput:
    """Tokens/s a cluster served while it was saturated (backlogged), per role."""

    prefill_tps: float
    decode_tps: float


def sustained_throughput(
    requests: pl.DataFrame,
    cluster: ClusterSpec,
    *,
    rate_factor: float,
    settle_fraction: float = 0.25,
    interval_s: float = 5.0,
) -> SustainedThroughput:
    """Serve ``requests`` with arrivals compressed ``rate_factor`` times; measure the throughput.

    Parameters
    ----------
    requests : pl.DataFrame
        Canonical request frame (:mod:`simulator.traces`).
    cluster : ClusterSpec
        The cluster under test.
    rate_factor : float
        Arrival times are divided by this; choose it so the offered load exceeds what any
        cluster under comparison can serve, or the result measures the offer, not the cluster.
    settle_fraction : float
        Leading share of the arrival span left out while queues build up.
    interval_s : float
        Telemetry interval the throughput is averaged from.

    Returns
    -------
    SustainedThroughput
        Mean over the intervals between ``settle_fraction`` of the arrival span and the last
        arrival of the pools' total prompt tokens/s and generated tokens/s: while arrivals
        continue, a saturated cluster serves at the rate of its bottleneck.
    """
    if not rate_factor > 0 or not 0 <= settle_fraction < 1:
        raise ValueError("rate_factor must be > 0 and settle_fraction in [0, 1)")
    compressed = requests.with_columns(pl.col("arrival_s") / rate_factor)
    result = simulate(compressed, cluster, service="pressure", start=_EPOCH, interval_s=interval_s)
    span_s = compressed["arrival_s"].max()
    elapsed_s = (pl.col("ts") - pl.lit(_EPOCH)).dt.total_seconds(fractional=True)
    window = result.instance_samples.filter(
        (elapsed_s >= settle_fraction * span_s) & (elapsed_s + interval_s <= span_s)
    )
    if window.is_empty():
        raise ValueError("the arrival span is too short for one interval after settling")
    per_interval = window.group_by("ts").agg(
        pl.col("prefill_tps_total").sum(), pl.col("decode_tps").sum()
    )
    return SustainedThroughput(
        prefill_tps=float(per_interval["prefill_tps_total"].mean()),
        decode_tps=float(per_interval["decode_tps"].mean()),
    )
