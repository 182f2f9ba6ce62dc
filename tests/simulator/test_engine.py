"""The discrete-event cluster: conservation, latency invariants, valid telemetry, mechanisms."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from simulator import ClusterSpec, PoolSpec, default_cluster, simulate, thin
from simulator.traces import canonical_frame
from telemetry.schema import conform

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def small_run(azure_peak, small_cluster):
    return simulate(azure_peak, small_cluster, service="chat", start=START)


def test_every_request_finishes_exactly_once_and_tokens_are_conserved(small_run, azure_peak):
    requests = small_run.requests
    assert requests.height == azure_peak.height
    assert requests["finish_s"].null_count() == 0
    assert requests["first_token_s"].null_count() == 0
    samples = small_run.instance_samples
    interval_s = samples["interval_s"][0]
    # Prefill emits each request's first token; decode steps emit the rest.
    decode_tokens = (samples["decode_tps"] * interval_s).sum()
    assert decode_tokens + requests.height == pytest.approx(azure_peak["output_tokens"].sum())
    prefill_tokens = (samples["prefill_tps_total"] * interval_s).sum()
    assert prefill_tokens == pytest.approx(azure_peak["input_tokens"].sum())
    load = small_run.service_load
    assert (load["request_rate_rps"] * load["interval_s"]).sum() == pytest.approx(requests.height)


def test_latencies_respect_causality(small_run):
    r = small_run.requests
    prefill_s = r["first_token_s"] - r["prefill_start_s"]
    assert (prefill_s > 0).all()
    assert (r["ttft_s"] >= prefill_s - 1e-9).all()
    assert (r["prefill_start_s"] >= r["arrival_s"]).all()
    decoded = r.filter(pl.col("output_tokens") > 1)
    assert decoded["decode_instance"].null_count() == 0
    assert (decoded["decode_start_s"] > decoded["first_token_s"]).all()  # KV transfer takes time
    assert (decoded["finish_s"] > decoded["decode_start_s"]).all()


def test_telemetry_is_canonical_and_bounded(small_run, small_cluster):
    samples = conform(small_run.instance_samples, "instance_samples")
    load = conform(small_run.service_load, "service_load")
    n_instances = sum(p.count for p in (*small_cluster.prefill_pools, *small_cluster.decode_pools))
    assert samples.height == n_instances * load.height
    assert samples["ts"].unique().sort().equals(load["ts"].sort())
    for column in ("gpu_util_ratio", "sm_active_ratio", "kv_usage_ratio"):
        assert samples[column].is_between(0.0, 1.0).all()
    assert (samples["sm_active_ratio"] <= samples["gpu_util_ratio"] + 1e-9).all()
    by_role = samples.group_by("role").agg(
        pl.col("ttft_p99_s").drop_nulls().len().alias("ttft_samples"),
        pl.col("tbt_p99_s").drop_nulls().len().alias("tbt_samples"),
    )
    counts = {row["role"]: row for row in by_role.iter_rows(named=True)}
    assert counts["prefill"]["tbt_samples"] == 0 and counts["prefill"]["ttft_samples"] > 0
    assert counts["decode"]["ttft_samples"] == 0 and counts["decode"]["tbt_samples"] > 0
    ordered = samples.filter(pl.col("ttft_p50_s").is_not_null())
    assert (ordered["ttft_p50_s"] <= ordered["ttft_p90_s"]).all()
    assert (ordered["ttft_p90_s"] <= ordered["ttft_p99_s"]).all()
    assert set(samples["gpu_type"].unique()) == {"L40S", "H20", "RTX-PRO-6000"}


def test_runs_are_deterministic(small_run, azure_peak, small_cluster):
    again = simulate(azure_peak, small_cluster, service="chat", start=START)
    assert again.instance_samples.equals(small_run.instance_samples)
    assert again.requests.equals(small_run.requests)


def test_prefix_cache_hits_cut_the_computed_tokens():
    # Same 4-block prefix twice, far enough apart for the first to finish: the second reuses
    # 3 blocks (the last prompt token is always recomputed, so the 4th block misses by one).
    requests = canonical_frame(
        [0.0, 30.0, 60.0],
        [2048, 2048, 2048],
        [4, 4, 4],
        [[1, 2, 3, 4], [1, 2, 3, 4], [9, 8, 7, 6]],
    )
    cluster = ClusterSpec(
        model="Llama-3.1-8B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=1, count=1),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=1, count=1),),
    )
    result = simulate(requests, cluster, service="chat", start=START)
    assert result.requests["cached_tokens"].to_list() == [0, 2047, 0]
    samples = result.instance_samples
    assert samples["prefill_tps_total"].sum() * 15 == pytest.approx(3 * 2048)
    assert samples["prefill_tps_cache_missed"].sum() * 15 == pytest.approx(2 * 2048 + 1)


def test_a_request_no_instance_can_hold_is_refused(small_cluster):
    requests = canonical_frame([0.0], [10_000_000], [10])
    # Named, with the instances that would hold it: none of the known GPUs holds 10 M tokens.
    with pytest.raises(
        ValueError, match=r"row 0 \(arriving at 0.000 s\): 10,000,000 input.*no known GPU"
    ):
        simulate(requests, small_cluster, service="chat", start=START)
    with pytest.raises(ValueError, match="time-zone aware"):
        simulate(requests, small_cluster, service="chat", start=datetime(2024, 1, 1))


def _mean_util(result, role: str, horizon_s: float) -> float:
    samples = result.instance_samples
    start = samples["ts"].min()
    return samples.filter(
        pl.col("role") == role,
        pl.col("ts") < start + pl.duration(seconds=horizon_s),
    )["gpu_util_ratio"].mean()


def test_prefill_util_tracks_load_while_decode_util_barely_moves(azure_peak):
    """HeteroScale's key observation (Sec. 3.3.2), from the mechanism alone: prefill work is
    proportional to arrivals, while a decode instance steps whenever any request is resident."""
    cluster = default_cluster()
    full = simulate(azure_peak, cluster, service="chat", start=START)
    fifth = simulate(thin(azure_peak, 0.2, seed=0), cluster, service="chat", start=START)
    horizon_s = 600.0  # the trace window; the drain after it is not load
    drop = {
        role: 1 - _mean_util(fifth, role, horizon_s) / _mean_util(full, role, horizon_s)
        for role in ("prefill", "decode")
    }
    assert 0.6 < drop["prefill"] < 0.95  # roughly proportional to the 80% load cut
    assert drop["prefill"] >= 2 * drop["decode"]
    assert _mean_util(fifth, "decode", horizon_s) > 0.8


def test_default_cluster_carries_the_default_trace_at_its_peak(azure):
    result = simulate(azure.requests, default_cluster(), service="chat", start=azure.start)
    per_minute = (
        result.instance_samples.filter(pl.col("role") == "prefill")
        .group_by(pl.col("ts").dt.truncate("1m"))
        .agg(pl.col("gpu_util_ratio").mean(), pl.col("queue_depth").mean())
    )
    assert 0.70 <= per_minute["gpu_util_ratio"].max() <= 0.85
    assert per_minute["queue_depth"].max() < 1.0
    assert result.requests["finish_s"].max() < azure.requests["arrival_s"].max() + 120
