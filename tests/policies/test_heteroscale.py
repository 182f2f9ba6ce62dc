"""HeteroScale's coordinated controller: each mechanism of §5.3 and §5.5, and its invariants."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.controller import Window
from policies.heteroscale import HeteroScale, HeteroScaleConfig
from policies.inputs import PoolCapacity
from tests.policies.windows import DECODE_KEY, PREFILL_KEY, inputs, window

# 200 decode tok/s per instance at the SLO, sized at 80%: 160 per instance; P:D 4.
PER_INSTANCE = 160.0


def controller(**config) -> HeteroScale:
    """A controller that has watched steady load since t = 0 (a fresh one waits a scale-in
    cool-down before its first scale-in)."""
    ctl = HeteroScale(inputs(), HeteroScaleConfig(**config))
    ctl.observe(window(0, decode_tps_total=10 * PER_INSTANCE))
    return ctl


def counts(decision, before=(8, 2)) -> tuple[int, int]:
    targets = decision.targets
    return targets.get(PREFILL_KEY, before[0]), targets.get(DECODE_KEY, before[1])


def test_decode_tps_sizes_the_total_and_the_ratio_splits_it():
    decision = controller().observe(window(1000, decode_tps_total=20 * PER_INSTANCE))
    assert counts(decision) == (16, 4)
    assert decision.reason.startswith("scale out: decode 3,200 tok/s")


def test_inside_the_band_it_holds():
    ctl = controller(scale_out_threshold=0.1, scale_in_threshold=0.1)
    assert ctl.observe(window(1000, decode_tps_total=10.5 * PER_INSTANCE)).targets == {}
    assert ctl.observe(window(2000, decode_tps_total=9.2 * PER_INSTANCE)).targets == {}


def test_scale_in_waits_for_its_cool_down_and_moves_by_the_damped_step():
    ctl = controller(scale_in_cooldown_s=300, scale_in_step=0.1, soft_scale_in_s=0)
    low = 2 * PER_INSTANCE  # wants 2 of the 10 running
    assert ctl.observe(window(100, decode_tps_total=low)).targets == {}  # 100 s since start
    decision = ctl.observe(window(400, decode_tps_total=low))
    assert sum(counts(decision)) == 9  # one instance: 10% of 10
    assert decision.keep_warm_s == 0
    assert ctl.observe(window(600, prefill=7, decode=2, decode_tps_total=low)).targets == {}


def test_scale_out_is_not_repeated_while_instances_start():
    ctl = controller()
    high = 20 * PER_INSTANCE
    assert sum(counts(ctl.observe(window(1000, decode_tps_total=high)))) == 20
    starting = window(1100, starting=(8, 2), decode_tps_total=high)
    assert ctl.observe(starting).targets == {}


def test_latency_tiers_step_by_ten_and_twenty_percent_of_the_instances():
    steady = 10 * PER_INSTANCE
    moderate = controller().observe(window(1000, decode_tps_total=steady, tbt=0.095))
    severe = controller().observe(window(1000, decode_tps_total=steady, ttft=7.0))
    assert sum(counts(moderate)) == 11 and "+10%" in moderate.reason
    assert sum(counts(severe)) == 12 and "+20%" in severe.reason


def test_latency_above_the_guard_forbids_scale_in():
    decision = controller().observe(window(1000, decode_tps_total=PER_INSTANCE, tbt=0.085))
    assert decision.targets == {}
    assert "no scale-in at latency" in decision.reason


def test_without_latency_feedback_a_breach_does_nothing():
    ctl = HeteroScale(inputs(), latency_feedback=False)
    ctl.observe(window(0, decode_tps_total=10 * PER_INSTANCE))
    assert ctl.observe(window(1000, decode_tps_total=10 * PER_INSTANCE, ttft=9.0)).targets == {}


def test_soft_scale_in_keeps_instances_warm_and_restores_them_when_latency_degrades():
    ctl = controller(soft_scale_in_s=300)
    decision = ctl.observe(window(1000, decode_tps_total=2 * PER_INSTANCE))
    assert decision.keep_warm_s == 300
    after = counts(decision)
    degraded = ctl.observe(window(1060, prefill=after[0], decode=after[1], tbt=0.095))
    assert counts(degraded, after) == (8, 2)
    assert degraded.reason.startswith("soft scale-in undone")


def test_soft_scale_in_watch_ends_after_its_window():
    ctl = controller(soft_scale_in_s=300)
    after = counts(ctl.observe(window(1000, decode_tps_total=2 * PER_INSTANCE)))
    late = ctl.observe(
        window(
            1400,
            prefill=after[0],
            decode=after[1],
            tbt=0.095,
            decode_tps_total=sum(after) * PER_INSTANCE,
        )
    )
    assert not late.reason.startswith("soft scale-in undone")


def test_stale_metrics_hold():
    decision = controller().observe(window(1000, stale=True))
    assert decision.targets == {} and "stale" in decision.reason


def test_heterogeneous_pools_spread_a_role_by_capacity():
    pools = (
        PoolCapacity(PREFILL_KEY, 1000.0),
        PoolCapacity(DECODE_KEY, 1000.0, max_instances=2),
        PoolCapacity(("decode", "H100-SXM", 8), 2000.0, min_instances=0),
    )
    ctl = HeteroScale(inputs(pools=pools), HeteroScaleConfig(scale_out_step=10.0))
    decision = ctl.observe(window(1000, decode_tps_total=40 * PER_INSTANCE))
    # 40 instances: 32 prefill, 8 decode H20-equivalents = 2 H20 + 3 H100 (2x capacity each).
    assert decision.targets[DECODE_KEY] == 2
    assert decision.targets[("decode", "H100-SXM", 8)] == 3


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        HeteroScaleConfig(utilisation_target=1.5)
    with pytest.raises(ValueError):
        HeteroScaleConfig(moderate=1.2, severe=1.0)


observations = st.tuples(
    st.floats(0, 1e5),  # decode TPS of the pool
    st.floats(0, 20),  # TTFT p99
    st.floats(0, 0.3),  # TBT p99
    st.booleans(),  # stale
    st.integers(0, 3),  # instances still starting per role
)


@settings(max_examples=300, deadline=None)
@given(st.lists(observations, min_size=1, max_size=40), st.integers(1, 30))
def test_properties_bounds_ratio_stale_and_starting(steps, max_instances):
    ctl = HeteroScale(inputs(max_instances=max_instances))
    prefill, decode = min(8, max_instances), min(2, max_instances)
    for k, (tps, ttft, tbt, stale, starting) in enumerate(steps):
        before = (prefill, decode)
        view = window(
            60.0 * (k + 1),
            prefill=prefill,
            decode=decode,
            starting=(starting, 0),
            decode_tps_total=tps,
            ttft=ttft,
            tbt=tbt,
            stale=stale,
        )
        decision = ctl.observe(view)
        after = counts(decision, before)
        assert all(1 <= n <= max_instances for n in after)  # bounds
        if decision.targets:
            # the ratio within one instance of its share of the total
            total = sum(after)
            assert abs(after[0] - total * 4 / 5) <= 1 and abs(after[1] - total / 5) <= 1
        if stale:
            assert decision.targets == {}  # never scales blind
        if starting and decision.reason.startswith("scale out"):
            pytest.fail("scaled out on the proportional rule while instances were starting")
        prefill, decode = after


@settings(max_examples=30, deadline=None)
@given(st.floats(100, 50_000))
def test_constant_load_settles_without_oscillation(tps):
    ctl = controller()
    prefill, decode = 8, 2
    history = []
    for k in range(600):
        view = window(15.0 * (k + 1), prefill=prefill, decode=decode, decode_tps_total=tps)
        prefill, decode = counts(ctl.observe(view), (prefill, decode))
        history.append(prefill + decode)
    moves = [b - a for a, b in itertools.pairwise(history) if b != a]
    assert all(m > 0 for m in moves) or all(m < 0 for m in moves)  # one direction, no flaps
    assert len(set(history[-100:])) == 1
    assert abs(history[-1] - math.ceil(tps / PER_INSTANCE)) <= max(2, 0.12 * tps / PER_INSTANCE)


def test_window_helpers_read_the_pools():
    view: Window = window(100, decode=4, decode_tps_total=400.0)
    assert view.total("decode_tps", "decode") == pytest.approx(400.0)
    assert view.instances("prefill") == 8
