"""Closed-loop simulation: scaling mid-run, instance lifecycle, placement-dependent KV bandwidth."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from numpy.testing import assert_allclose

from simulator import ClusterSpec, PoolSpec, default_trace, simulate
from simulator.closed_loop import ClosedLoopSimulation, ScaleAction
from simulator.cluster import LifecycleSpec
from simulator.traces import canonical_frame

START = datetime(2023, 11, 16, tzinfo=UTC)
INTERVAL_S = 15.0


def _cluster(prefill: int = 2, decode: int = 1) -> ClusterSpec:
    return ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec("prefill", "L20", tp=4, count=prefill),),
        decode_pools=(PoolSpec("decode", "H20", tp=4, count=decode),),
    )


@pytest.fixture(scope="module")
def requests() -> pl.DataFrame:
    return default_trace().requests.head(600)


def _loop(requests, cluster=None, startup_s: float = 60.0) -> ClosedLoopSimulation:
    return ClosedLoopSimulation(
        requests,
        cluster or _cluster(),
        service="s",
        start=START,
        interval_s=INTERVAL_S,
        lifecycle=LifecycleSpec(default_startup_s=startup_s),
    )


def _drive(loop: ClosedLoopSimulation, plan: dict[float, list[ScaleAction]], until_s: float):
    """Advance interval by interval, scaling at the planned instants; return the frames."""
    frames = []
    t = 0.0
    while t < until_s:
        t += INTERVAL_S
        frames.append(loop.advance(t).instance_samples)
        loop.scale(plan.get(t, []))
    return pl.concat(frames)


def _offsets(frame: pl.DataFrame) -> list[int]:
    """Seconds from the trace start to each row's interval."""
    return frame.select((pl.col("ts") - pl.lit(START)).dt.total_seconds())["ts"].to_list()


def _assert_frames_equal(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    ours, theirs = ours.sort("ts", "instance_id"), theirs.sort("ts", "instance_id")
    assert ours.height == theirs.height
    for column in ours.columns:
        if ours[column].dtype.is_numeric():
            assert_allclose(
                ours[column].cast(pl.Float64).fill_null(-1.0).to_numpy(),
                theirs[column].cast(pl.Float64).fill_null(-1.0).to_numpy(),
                rtol=1e-12,
                atol=1e-12,
                err_msg=column,
            )
        else:
            assert ours[column].equals(theirs[column]), column


SCALE_PLAN = {
    30.0: [
        ScaleAction("prefill", "L20", 4, 2),
        ScaleAction("decode", "H20", 4, 1),
    ],
    120.0: [ScaleAction("prefill", "L20", 4, -2), ScaleAction("decode", "H20", 4, -1)],
}


def test_no_actions_replays_simulate_exactly(requests):
    loop = _loop(requests)
    frames = _drive(loop, {}, 90.0)
    ours, theirs = loop.result(), simulate(requests, _cluster(), service="s", start=START)
    assert ours.requests.equals(theirs.requests)
    assert ours.service_load.equals(theirs.service_load)
    _assert_frames_equal(ours.instance_samples, theirs.instance_samples)
    # Each interval reads, when first returned, as it does at the end of the run.
    done = theirs.instance_samples.filter(pl.col("ts") <= frames["ts"].max())
    _assert_frames_equal(frames, done)


def test_every_request_finishes_once_under_scale_out_and_in(requests):
    loop = _loop(requests)
    frames = _drive(loop, SCALE_PLAN, 180.0)
    result = loop.result()
    out = result.requests
    assert out.height == requests.height
    assert out["finish_s"].null_count() == 0
    assert (out["finish_s"] >= out["first_token_s"]).all()
    assert out.filter(pl.col("output_tokens") > 1)["decode_instance"].null_count() == 0
    # Telemetry returned along the way agrees with the final run's.
    _assert_frames_equal(frames, result.instance_samples.filter(pl.col("ts") <= frames["ts"].max()))


def test_no_traffic_reaches_starting_or_draining_instances(requests):
    loop = _loop(requests)
    _drive(loop, SCALE_PLAN, 180.0)
    result = loop.result()
    timelines = {
        info.instance_id: changes
        for info, changes in zip(loop._sim.infos, loop._sim.lifecycle.timeline, strict=True)
    }

    def ready_at(instance_id: str, at_s: float) -> bool:
        state = [s for t, s in timelines[instance_id] if t <= at_s][-1]
        return state == "ready"

    out = result.requests
    for row in out.iter_rows(named=True):
        assert ready_at(row["prefill_instance"], row["arrival_s"])
        if row["decode_instance"] is not None:
            assert ready_at(row["decode_instance"], row["first_token_s"])
    new = [name for name, changes in timelines.items() if changes[0][0] == 30.0]
    assert len(new) == 3
    # Started at 30 s with a 60 s delay: they got traffic only after 90 s.
    routed = out.filter(pl.col("prefill_instance").is_in(new))
    assert routed.height > 0 and routed["arrival_s"].min() >= 90.0


def test_startup_delay_shows_as_not_ready_intervals(requests):
    loop = _loop(requests, startup_s=60.0)
    frames = _drive(loop, SCALE_PLAN, 180.0)
    added = frames.filter(pl.col("instance_id") == "prefill-L20-2").sort("ts")
    # Launched at 30 s: intervals from 30 s, not ready until 90 s, idle meanwhile.
    offsets = _offsets(added)
    assert offsets[0] == 30
    starting = added.filter(pl.col("ts") < pl.lit(START) + pl.duration(seconds=90))
    assert starting.height == 4 and not starting["ready"].any()
    assert starting["gpu_util_ratio"].max() == 0.0
    assert added.filter(pl.col("ts") == pl.lit(START) + pl.duration(seconds=90))["ready"].all()
    # The original instances report from the start and stay ready until scaled in.
    first = frames.filter(pl.col("instance_id") == "prefill-L20-0")
    assert first.height == 12


def test_a_warm_instance_is_restored_without_the_startup_delay():
    # Light load: instance 1 drains at once, so it goes warm rather than staying draining.
    requests = canonical_frame(
        arrival_s=[float(k) for k in range(0, 300, 2)],
        input_tokens=[500] * 150,
        output_tokens=[20] * 150,
    )
    remove = ScaleAction("prefill", "L20", 4, -1, keep_warm_s=120.0)
    add = ScaleAction("prefill", "L20", 4, 1)
    warm = _loop(requests, startup_s=90.0)
    warm_frames = _drive(warm, {60.0: [remove], 120.0: [add]}, 240.0)
    cold = _loop(requests, startup_s=90.0)
    hard_remove = ScaleAction("prefill", "L20", 4, -1)
    cold_frames = _drive(cold, {60.0: [hard_remove], 120.0: [add]}, 240.0)
    # Warm: the same instance is back and ready from 120 s; cold: a new one waits 90 s.
    states = [s for _, s in warm._sim.lifecycle.timeline[1]]
    assert states == ["starting", "ready", "draining", "warm", "ready"]
    assert len(warm._sim.infos) == 3 and len(cold._sim.infos) == 4

    def ready_offsets(frames, instance_id):
        rows = frames.filter((pl.col("instance_id") == instance_id) & pl.col("ready"))
        return _offsets(rows)

    assert 120 in ready_offsets(warm_frames, "prefill-L20-1")
    assert min(ready_offsets(cold_frames, "prefill-L20-2")) == 210
    assert warm.result().requests["finish_s"].null_count() == 0


def test_a_lower_kv_bandwidth_factor_delays_the_second_token():
    # The first request holds decode-H20-0's KV for a long decode, so the router sends the
    # second one to the added instance, placed across an S2 switch from prefill (factor 0.8).
    requests = canonical_frame(
        arrival_s=[0.0, 5.0], input_tokens=[8_000, 8_000], output_tokens=[2_000, 10]
    )

    def transfer_wait(factor: float) -> list[float]:
        loop = _loop(requests, startup_s=0.0)
        loop.scale([ScaleAction("decode", "H20", 4, 1, kv_bandwidth_factor=factor)])
        out = loop.result().requests
        assert out["decode_instance"].to_list() == ["decode-H20-0", "decode-H20-1"]
        return (out["decode_start_s"] - out["first_token_s"]).to_list()

    fast, slow = transfer_wait(1.0), transfer_wait(0.8)
    assert slow[0] == fast[0]
    # Admission is immediate, so the wait before the first decode step is the transfer (plus
    # at most the next step boundary, none here: the instance is idle).
    assert_allclose(slow[1], fast[1] / 0.8, rtol=1e-9)


def test_scale_in_refuses_to_leave_a_role_without_ready_instances(requests):
    loop = _loop(requests, _cluster(prefill=1))
    with pytest.raises(ValueError, match="no ready prefill"):
        loop.scale([ScaleAction("prefill", "L20", 4, -1)])
    with pytest.raises(ValueError, match="cannot remove"):
        loop.scale([ScaleAction("decode", "H20", 4, -3)])


@pytest.mark.parametrize("step_s", [7.3, 40.0])
def test_frames_match_the_final_run_bit_for_bit_whatever_the_advance_step(requests, step_s):
    # Advances that end mid-interval leave rows logged past the last whole interval, and
    # steps longer than an interval return several intervals at once.
    loop = _loop(requests)
    frames, t, pending = [], 0.0, dict(SCALE_PLAN)
    while t < 200.0:
        t += step_s
        frames.append(loop.advance(t).instance_samples)
        for at in [at for at in pending if at <= t]:
            loop.scale(pending.pop(at))
    ours = pl.concat(frames).sort("ts", "instance_id")
    final = loop.result().instance_samples
    assert ours.equals(final.filter(pl.col("ts") <= ours["ts"].max()).sort("ts", "instance_id"))


def test_an_advance_reads_only_the_log_rows_that_still_count():
    requests = default_trace().requests.head(3000)
    loop = _loop(requests)
    read = []
    for k in range(1, 41):
        loop.advance(k * INTERVAL_S)
        kept = loop._log._kept  # what the next call will read, besides new rows
        read.append(len(kept.pass_instance) + len(kept.queue_instance))
    logged = loop._sim.recorder
    total = len(logged.pass_instance) + len(logged.queue_instance)
    # Rows carried over stay a handful per instance while the log keeps growing.
    assert max(read) <= 3 * len(loop._sim.infos) < total / 10
