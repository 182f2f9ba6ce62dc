"""The reactive baselines: each one's algorithm on hand-made windows, the invariants they share
(bounds, no scale-in blind, settling, starting instances counted), and a day of real load."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.baselines.hpa_gpu_util import HpaGpuUtil
from policies.baselines.independent_tps import IndependentTps
from policies.baselines.latency_steps import LatencySteps
from policies.baselines.saturation import Saturation
from policies.controller import DECODE, PREFILL, PoolView, Window
from policies.inputs import PolicyInputs, PoolCapacity
from policies.loop import run_controller
from policies.slo import ServiceSLO
from simulator import default_trace
from simulator.cluster import DEFAULT_STARTUP_S, ClusterSpec, PoolSpec
from simulator.fluid_load import FluidLoad, LengthMix, load_from_windows
from simulator.fluid_loop import METRICS, FluidLoop
from simulator.servegen import load_servegen_rates

START = datetime(2024, 1, 1, tzinfo=UTC)
ROLES = (PREFILL, DECODE)
KEYS = {PREFILL: ("prefill", "L20", 4), DECODE: ("decode", "H20", 4)}
SLO = ServiceSLO(ttft_p99_s=6.0, tbt_p99_s=0.1)
#: Tokens/s one instance of either role carries at the SLO.
CAPACITY = 1000.0
CONTROLLERS = {
    "hpa_gpu_util": HpaGpuUtil,
    "independent_tps": IndependentTps,
    "latency_steps": LatencySteps,
    "saturation": Saturation,
}


def make_inputs(low: int = 1, high: int = 64) -> PolicyInputs:
    """Both pools carry :data:`CAPACITY` per instance, within ``[low, high]``; a tiny history."""
    requests = np.full(8, 10.0)
    mix = LengthMix(1000.0, 200.0, 1100.0, 1200.0, (900.0, 2500.0, 4000.0))
    history = FluidLoad(START, 15.0, requests, requests * 1000, requests * 200, mix)
    pools = tuple(PoolCapacity(KEYS[role], CAPACITY, low, high) for role in ROLES)
    return PolicyInputs(pools, SLO, pd_ratio=4.0, decode_tps_per_instance=200.0, history=history)


def view(role: str, ready: int, starting: int = 0, *, stale: bool = False, **values) -> PoolView:
    """A pool whose instances report ``values`` (every other metric 0)."""
    metrics = None if stale else {name: 0.0 for name in METRICS} | values
    return PoolView(KEYS[role], ready, starting, metrics)


def window(t_s: float, *pools: PoolView, interval_s: float = 15.0) -> Window:
    return Window(START + timedelta(seconds=t_s), t_s, interval_s, 30.0, pools)


def decode_target(controller, t_s: float, ready: int, starting: int = 0, **values) -> int:
    """The decode pool's target after one window with only a decode pool observed."""
    decision = controller.observe(window(t_s, view(DECODE, ready, starting, **values)))
    return decision.targets[KEYS[DECODE]]


# --- HPA on GPU utilisation -------------------------------------------------------------------


def test_hpa_scales_by_the_utilisation_ratio():
    hpa = HpaGpuUtil(make_inputs())
    decision = hpa.observe(window(15, view(DECODE, 4, gpu_util_ratio=0.98)))
    assert decision.targets[KEYS[DECODE]] == 6  # ceil(4 x 1.4)
    assert "util 0.98 / target 0.70: 4 -> 6" in decision.reason
    assert decode_target(HpaGpuUtil(make_inputs(), target=0.5), 15, 4, gpu_util_ratio=1.0) == 8


@pytest.mark.parametrize("util", [0.64, 0.70, 0.76])
def test_hpa_holds_inside_the_tolerance(util):
    assert decode_target(HpaGpuUtil(make_inputs()), 15, 4, gpu_util_ratio=util) == 4


def test_hpa_scales_down_only_after_300_s_of_lower_recommendations():
    hpa = HpaGpuUtil(make_inputs())
    assert decode_target(hpa, 0, 10, gpu_util_ratio=0.7) == 10
    held = [decode_target(hpa, t, 10, gpu_util_ratio=0.35) for t in range(15, 300, 15)]
    assert held == [10] * len(held)
    assert decode_target(hpa, 300, 10, gpu_util_ratio=0.35) == 5


def test_hpa_scale_up_is_rate_limited_per_period():
    hpa = HpaGpuUtil(make_inputs(), target=0.1)  # utilisation 1.0 asks for 10x
    assert decode_target(hpa, 0, 2, gpu_util_ratio=1.0) == 6  # max(2 x 2, 2 + 4)
    # 5 s later the period that began at 2 instances is still open.
    assert decode_target(hpa, 5, 2, 4, gpu_util_ratio=1.0) == 6
    assert decode_target(hpa, 15, 2, 4, gpu_util_ratio=1.0) == 12


def test_hpa_counts_starting_instances_as_idle_when_scaling_up():
    # 4 ready at 1.4x the target with 2 starting: (0.98 x 4 / 6) / 0.7 = 0.93, inside.
    assert decode_target(HpaGpuUtil(make_inputs()), 15, 4, 2, gpu_util_ratio=0.98) == 6


def test_hpa_holds_on_missing_metrics_and_restores_bounds_at_once():
    hpa = HpaGpuUtil(make_inputs(high=8))
    decision = hpa.observe(window(15, view(DECODE, 4, stale=True)))
    assert decision.targets[KEYS[DECODE]] == 4
    assert "missing" in decision.reason
    assert decode_target(hpa, 30, 12, gpu_util_ratio=0.1) == 8


# --- Independent TPS --------------------------------------------------------------------------


def test_independent_tps_sizes_each_role_on_its_own_throughput():
    ctl = IndependentTps(make_inputs())
    decision = ctl.observe(
        window(
            15,
            view(PREFILL, 4, prefill_tps_total=2500.0),  # 10,000 tok/s: 10 instances
            view(DECODE, 4, decode_tps=0.0),  # idle decode goes to its minimum
        )
    )
    assert decision.targets == {KEYS[PREFILL]: 10, KEYS[DECODE]: 1}
    assert "prefill 10,000 tok/s wants 10, runs 4" in decision.reason


def test_independent_tps_holds_inside_the_band():
    # 10 instances at 10,500 tok/s want 11: 1.1, not above the band.
    assert decode_target(IndependentTps(make_inputs()), 15, 10, decode_tps=1050.0) == 10


def test_independent_tps_scale_in_waits_for_its_cool_down():
    ctl = IndependentTps(make_inputs())
    assert decode_target(ctl, 0, 2, decode_tps=2750.0) == 6
    held = [decode_target(ctl, t, 6, decode_tps=300.0) for t in range(15, 300, 15)]
    assert held == [6] * len(held)
    assert decode_target(ctl, 300, 6, decode_tps=300.0) == 2


def test_independent_tps_holds_a_role_without_metrics():
    decision = IndependentTps(make_inputs()).observe(
        window(15, view(PREFILL, 4, stale=True), view(DECODE, 4, decode_tps=0.0))
    )
    assert decision.targets == {KEYS[PREFILL]: 4, KEYS[DECODE]: 1}


# --- Latency steps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "ready", "values", "target"),
    [
        (DECODE, 10, {"tbt_p99_s": 0.11}, 11),  # above the SLO: +10%
        (DECODE, 10, {"tbt_p99_s": 0.13}, 12),  # above 1.2x: +20%
        (DECODE, 3, {"tbt_p99_s": 0.13}, 4),  # at least one
        (PREFILL, 20, {"ttft_p99_s": 7.0}, 22),  # TTFT for prefill
        (DECODE, 10, {"tbt_p99_s": 0.1}, 10),  # at the SLO: hold
    ],
)
def test_latency_steps_tiers(role, ready, values, target):
    decision = LatencySteps(make_inputs()).observe(window(15, view(role, ready, **values)))
    assert decision.targets[KEYS[role]] == target


def test_latency_steps_does_not_cascade_while_instances_start():
    assert decode_target(LatencySteps(make_inputs()), 15, 10, 2, tbt_p99_s=0.13) == 12


def test_latency_steps_scales_in_after_a_whole_cool_down_below_half_the_slo():
    ctl = LatencySteps(make_inputs())
    assert decode_target(ctl, 0, 20, tbt_p99_s=0.04) == 20
    assert decode_target(ctl, 15, 20, tbt_p99_s=0.06) == 20  # not low: the clock restarts
    held = [decode_target(ctl, t, 20, tbt_p99_s=0.04) for t in range(30, 315, 15)]
    assert held == [20] * len(held)
    assert decode_target(ctl, 315, 20, tbt_p99_s=0.04) == 19  # 5% of 20


# --- Saturation (llm-d WVA V1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "target"),
    [
        ({"kv_usage_ratio": 0.85}, 5),  # saturated
        ({"queue_depth": 5.0}, 5),  # saturated
        ({"kv_usage_ratio": 0.75}, 5),  # spare KV 0.05 < 0.1
        ({"queue_depth": 2.5}, 5),  # spare queue 2.5 < 3
        ({"kv_usage_ratio": 0.6, "queue_depth": 1.0}, 4),  # fine, but 4 -> 3 would leave 0
    ],
)
def test_saturation_adds_one_instance_when_spare_capacity_runs_low(values, target):
    assert decode_target(Saturation(make_inputs()), 15, 4, **values) == target


def test_saturation_scales_in_one_after_a_whole_cool_down_of_safe_scale_in():
    ctl = Saturation(make_inputs())
    low = {"kv_usage_ratio": 0.3, "queue_depth": 0.5}  # on 3 instances: 0.4 and 0.67
    held = [decode_target(ctl, t, 4, **low) for t in range(15, 300, 15)]
    assert held == [4] * len(held)
    assert decode_target(ctl, 300, 4, **low) == 3
    assert decode_target(Saturation(make_inputs(low=0), scale_in_cooldown_s=0), 15, 1) == 1


def test_saturation_holds_while_instances_start_or_metrics_miss():
    ctl = Saturation(make_inputs())
    assert decode_target(ctl, 15, 4, 1, kv_usage_ratio=0.9) == 5
    assert ctl.observe(window(30, view(DECODE, 4, stale=True))).targets[KEYS[DECODE]] == 4


# --- Invariants of all four -------------------------------------------------------------------

metric_value = st.one_of(st.floats(0.0, 2.0), st.floats(0.0, 1e5), st.just(math.nan))
metric_values = st.fixed_dictionaries({name: metric_value for name in METRICS})
bounds = st.tuples(st.integers(0, 4), st.integers(0, 30)).map(lambda b: (b[0], b[0] + b[1]))


@st.composite
def pool_views(draw, role: str) -> PoolView:
    """Any pool: counts inside or outside the bounds, metrics missing or arbitrary."""
    metrics = None if draw(st.booleans()) else draw(metric_values)
    return PoolView(KEYS[role], draw(st.integers(0, 40)), draw(st.integers(0, 5)), metrics)


#: (ready, starting) of a pool within the bounds of ``make_inputs()``.
running = st.tuples(st.integers(0, 32), st.integers(0, 32)).filter(lambda c: sum(c) > 0)
windows = st.lists(st.tuples(pool_views(PREFILL), pool_views(DECODE)), min_size=1, max_size=8)


@pytest.mark.parametrize("name", CONTROLLERS)
@settings(max_examples=60, deadline=None)
@given(limits=bounds, observed=windows)
def test_targets_never_leave_the_bounds(name, limits, observed):
    ctl = CONTROLLERS[name](make_inputs(*limits))
    for i, pools in enumerate(observed):
        targets = ctl.observe(window(15.0 * (i + 1), *pools)).targets
        assert set(targets) == set(KEYS.values())
        assert all(limits[0] <= n <= limits[1] for n in targets.values())


@pytest.mark.parametrize("name", CONTROLLERS)
@settings(max_examples=60, deadline=None)
@given(observed=windows, counts=st.tuples(running, running))
def test_missing_metrics_never_scale_in(name, observed, counts):
    ctl = CONTROLLERS[name](make_inputs())
    for i, pools in enumerate(observed):
        ctl.observe(window(15.0 * (i + 1), *pools))
    blind = tuple(PoolView(KEYS[role], *n, None) for role, n in zip(ROLES, counts, strict=True))
    for i in range(len(observed) + 1, len(observed) + 31):  # longer than any cool-down
        targets = ctl.observe(window(15.0 * i, *blind)).targets
        assert all(targets[p.key] >= p.instances for p in blind)


class ToyPlant:
    """Constant load on two pools: ``load`` instances' worth of work each, per-instance metrics
    that follow the load per ready instance ``u``, launches ready after ``startup`` windows."""

    def __init__(self, load: dict[str, float], counts: dict[str, int], startup: int) -> None:
        self.load, self.ready, self.startup = load, dict(counts), startup
        self.launched: dict[str, list[int]] = {role: [] for role in load}  # ready-at windows

    def window(self, step: int) -> Window:
        for role, launched in self.launched.items():
            self.ready[role] += sum(1 for at in launched if at <= step)
            launched[:] = [at for at in launched if at > step]
        return window(15.0 * step, *(self._view(role) for role in ROLES))

    def _view(self, role: str) -> PoolView:
        ready = self.ready[role]
        if ready == 0:
            return PoolView(KEYS[role], 0, len(self.launched[role]), None)
        u = self.load[role] / ready
        tps = CAPACITY * min(u, 1.3)  # an instance serves up to 1.3x its at-SLO load
        values = {
            "gpu_util_ratio": min(u, 1.0),
            "prefill_tps_total": tps,
            "decode_tps": tps,
            "ttft_p99_s": SLO.ttft_p99_s * u,
            "tbt_p99_s": SLO.tbt_p99_s * u,
            "kv_usage_ratio": min(0.6 * u, 1.0),
            "queue_depth": 2.0 * u,
        }
        return view(role, ready, len(self.launched[role]), **values)

    def apply(self, targets: dict, step: int) -> None:
        for role, key in KEYS.items():
            delta = targets[key] - self.ready[role] - len(self.launched[role])
            if delta > 0:
                self.launched[role] += [step + self.startup] * delta
            for _ in range(-delta):  # cancel the newest launch first, then a ready instance
                if self.launched[role]:
                    self.launched[role].pop()
                else:
                    self.ready[role] -= 1


@pytest.mark.parametrize("name", CONTROLLERS)
@settings(max_examples=25, deadline=None)
@given(
    load=st.tuples(st.floats(0.05, 25.0), st.floats(0.05, 25.0)),
    counts=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    startup=st.integers(0, 8),
)
def test_constant_load_settles(name, load, counts, startup):
    ctl = CONTROLLERS[name](make_inputs(1, 30))
    plant = ToyPlant(
        dict(zip(ROLES, load, strict=True)), dict(zip(ROLES, counts, strict=True)), startup
    )
    wanted = []
    for step in range(1, 1001):
        targets = ctl.observe(plant.window(step)).targets
        plant.apply(targets, step)
        wanted.append(tuple(targets[key] for key in KEYS.values()))
    assert len(set(wanted[-100:])) == 1, wanted[-100:]


def rate_unlimited_hpa(inputs: PolicyInputs) -> HpaGpuUtil:
    """The HPA without its scale-up rate policy, so one decision reaches its recommendation."""
    return HpaGpuUtil(inputs, scale_up_pods=10**6)


@pytest.mark.parametrize("name", CONTROLLERS)
@settings(max_examples=60, deadline=None)
@given(
    ready=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    values=st.tuples(metric_values, metric_values),
)
def test_starting_instances_are_not_added_again(name, ready, values):
    """A pool that grew, seen again with the same metrics while its new instances start,
    keeps its count."""
    make = rate_unlimited_hpa if name == "hpa_gpu_util" else CONTROLLERS[name]
    ctl = make(make_inputs(1, 200))
    keys = list(KEYS.values())

    def observe(t_s: float, starting) -> dict:
        pools = zip(keys, ready, starting, values, strict=True)
        return ctl.observe(window(t_s, *(PoolView(*pool) for pool in pools))).targets

    first = observe(15, (0, 0))
    added = [max(first[key] - n, 0) for key, n in zip(keys, ready, strict=True)]
    second = observe(30, added)
    for key, extra in zip(keys, added, strict=True):
        if extra:
            assert second[key] == first[key]


# --- A day of real load on the fluid plant ----------------------------------------------------


@pytest.fixture(scope="module")
def day_runs() -> dict:
    """Each controller for one day of ServeGen's diurnal load (5% of its rate) from 20 prefill
    and 3 decode instances: a decision log per controller."""
    load = load_from_windows(
        load_servegen_rates(), default_trace().requests, 15.0, days=1, rate_scale=0.05
    )
    inputs = PolicyInputs(
        pools=(
            PoolCapacity(KEYS[PREFILL], 900.0, 1, 40),
            PoolCapacity(KEYS[DECODE], 1700.0, 1, 12),
        ),
        slo=ServiceSLO(),
        pd_ratio=8.0,
        decode_tps_per_instance=150.0,
        history=load,
    )
    cluster = ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec(*KEYS[PREFILL], 20),),
        decode_pools=(PoolSpec(*KEYS[DECODE], 3),),
    )
    return {
        name: run_controller(FluidLoop(load, cluster), make(inputs), control_interval_s=15.0)
        for name, make in CONTROLLERS.items()
    }


def moves(run, role: str) -> tuple[int, int]:
    """Scale-outs and scale-ins of a role's pool over the run."""
    log = run.decisions.filter(run.decisions["role"] == role)
    grow = log["to_instances"] > log["from_instances"]
    return int(grow.sum()), int((~grow).sum())


def test_on_a_real_day_gpu_utilisation_never_lets_decode_in_while_tps_does(day_runs):
    hpa, tps = day_runs["hpa_gpu_util"], day_runs["independent_tps"]
    assert moves(hpa, DECODE)[1] == 0  # decode utilisation stays ~1.0: never below target
    assert hpa.wanted[1, -1] == 12  # so decode climbs to its bound and stays
    assert moves(hpa, PREFILL)[1] > 0  # while prefill utilisation does follow the load
    outs, ins = moves(tps, DECODE)
    assert outs > 0 and ins > 0  # decode TPS follows the diurnal curve
    assert tps.wanted[1].min() < 3 < tps.wanted[1].max()


def test_on_a_real_day_latency_steps_never_give_prefill_back(day_runs):
    run = day_runs["latency_steps"]
    # The p99 prompt's own prefill keeps TTFT p99 above half the SLO at any load.
    outs, ins = moves(run, PREFILL)
    assert outs > 0 and ins == 0
    assert moves(run, DECODE)[1] > 0  # decode TBT p99 sits far below its SLO off-peak


@pytest.mark.parametrize("name", ["latency_steps", "saturation"])
def test_on_a_real_day_step_controllers_wait_for_starting_instances(name, day_runs):
    log = day_runs[name].decisions
    for role in ROLES:
        outs = log.filter((log["role"] == role) & (log["to_instances"] > log["from_instances"]))
        assert outs.height > 1
        assert np.diff(outs["t_s"].to_numpy()).min() >= DEFAULT_STARTUP_S


def test_on_a_real_day_saturation_follows_the_prefill_queue(day_runs):
    run = day_runs["saturation"]
    outs, ins = moves(run, PREFILL)
    assert outs > 0 and ins > 0
    assert run.wanted[0].min() < 20 < run.wanted[0].max()
