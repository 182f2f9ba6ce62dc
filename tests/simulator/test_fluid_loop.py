"""Fast mode in closed loop: the same model as the vectorised fluid run, and a real lifecycle."""

import numpy as np
import pytest

from simulator import ClusterSpec, PoolSpec, ScaleAction, default_trace
from simulator.cluster import LifecycleSpec
from simulator.fluid import simulate_fluid
from simulator.fluid_load import load_from_windows
from simulator.fluid_loop import FluidLoop
from simulator.servegen import load_servegen_rates


@pytest.fixture(scope="module")
def day():
    """One real ServeGen day scaled to ~12 requests/s, with the Azure length mix."""
    return load_from_windows(
        load_servegen_rates(), default_trace().requests, 15.0, days=1, rate_scale=0.05
    )


def cluster(prefill=40, decode=8) -> ClusterSpec:
    return ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec("prefill", "L20", 4, prefill),),
        decode_pools=(PoolSpec("decode", "H20", 4, decode),),
    )


def run(loop: FluidLoop, steps: int) -> None:
    for _ in range(steps):
        loop.advance()


@pytest.mark.parametrize(
    "metric",
    [
        "gpu_util_ratio",
        "prefill_tps_total",
        "decode_tps",
        "ttft_p99_s",
        "tbt_p99_s",
        "kv_usage_ratio",
    ],
)
def test_at_fixed_counts_it_reports_what_the_vectorised_model_does(day, metric):
    reference = simulate_fluid(day, cluster())
    loop = FluidLoop(day, cluster())
    run(loop, day.count)
    telemetry = loop.telemetry()
    for j, pool in enumerate(reference.pools):
        expected = pool.metrics[metric]
        got = telemetry.metric(metric)[j]
        sampled = np.isfinite(expected) & (expected != 0)
        if not sampled.any():
            continue
        error = np.abs(got[sampled] - expected[sampled]) / np.abs(expected[sampled])
        assert error.mean() < 0.005, (metric, j, error.mean())


def test_an_under_provisioned_pool_queues_and_its_ttft_grows(day):
    loop = FluidLoop(day, cluster(prefill=8))
    run(loop, 400)
    telemetry = loop.telemetry()
    ttft = telemetry.metric("ttft_p99_s")[0]
    assert telemetry.metric("queue_depth")[0].max() > 10
    assert ttft[-1] > 10 * ttft[0]


def test_new_instances_start_then_serve_and_are_paid_for_meanwhile(day):
    loop = FluidLoop(day, cluster(), lifecycle=LifecycleSpec(default_startup_s=60.0))
    run(loop, 2)
    loop.scale([ScaleAction("decode", "H20", 4, 3)])
    seen = [loop.advance()[1] for _ in range(6)]
    assert [(s.ready, s.starting, s.provisioned) for s in seen[:4]] == [(8, 3, 11)] * 4
    assert (seen[4].ready, seen[4].starting, seen[4].provisioned) == (11, 0, 11)


def test_scale_in_cancels_starting_instances_first_then_drains_one_interval(day):
    loop = FluidLoop(day, cluster(), lifecycle=LifecycleSpec(default_startup_s=120.0))
    run(loop, 1)
    loop.scale([ScaleAction("decode", "H20", 4, 2)])
    loop.advance()
    loop.scale([ScaleAction("decode", "H20", 4, -3)])  # 2 starting cancelled, 1 withdrawn
    draining = loop.advance()[1]
    assert (draining.ready, draining.starting, draining.provisioned) == (7, 0, 8)
    gone = loop.advance()[1]
    assert (gone.ready, gone.provisioned) == (7, 7)


def test_warm_instances_are_paid_for_their_window_and_restored_at_once(day):
    loop = FluidLoop(day, cluster(), lifecycle=LifecycleSpec(default_startup_s=300.0))
    run(loop, 1)
    loop.scale([ScaleAction("decode", "H20", 4, -2, keep_warm_s=45.0)])
    assert loop.advance()[1].provisioned == 8  # draining
    assert [loop.advance()[1].provisioned for _ in range(2)] == [8, 8]  # warm
    loop.scale([ScaleAction("decode", "H20", 4, 2)])  # restore, no startup delay
    restored = loop.advance()[1]
    assert (restored.ready, restored.provisioned) == (8, 8)


def test_warm_instances_leave_after_their_window(day):
    loop = FluidLoop(day, cluster())
    run(loop, 1)
    loop.scale([ScaleAction("decode", "H20", 4, -2, keep_warm_s=30.0)])
    provisioned = [loop.advance()[1].provisioned for _ in range(5)]
    assert provisioned == [8, 8, 8, 6, 6]


def test_an_unknown_pool_is_refused(day):
    loop = FluidLoop(day, cluster())
    with pytest.raises(ValueError, match="no decode pool of 8 x H100-SXM"):
        loop.scale([ScaleAction("decode", "H100-SXM", 8, 1)])
