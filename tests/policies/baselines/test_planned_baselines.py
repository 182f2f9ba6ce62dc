"""Baselines that plan from the history: the periodic schedule and the forecast planner."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.tsa.statespace.sarimax import SARIMAX

from policies.baselines.forecast_planner import (
    ForecastPlanner,
    _aggregate,
    _profile_terms,
    _ProfileARIMA,
)
from policies.baselines.periodic import Periodic
from policies.baselines.static_peak import StaticPeak
from policies.controller import DECODE, PREFILL, PoolView, Window
from policies.inputs import PolicyInputs, PoolCapacity
from policies.loop import run_controller
from policies.scoring import score
from policies.sizing import size_role
from policies.slo import ServiceSLO
from simulator import default_trace
from simulator.cluster import ClusterSpec, PoolSpec
from simulator.fluid_load import FluidLoad, LengthMix, load_from_windows
from simulator.fluid_loop import FluidLoop
from simulator.servegen import load_servegen_rates

START = datetime(2024, 1, 1, tzinfo=UTC)
DAY_S = 86_400.0
PREFILL_KEY = ("prefill", "L20", 4)
DECODE_KEY = ("decode", "H20", 4)
MIX = LengthMix(1000.0, 200.0, 1100.0, 1200.0, (900.0, 2500.0, 4000.0))
LAG = 2  # intervals


def _load(rate_rps, *, start=START, interval_s=15.0) -> FluidLoad:
    """``rate_rps`` per interval; 1,000 prompt and 200 decode tokens per request."""
    requests = np.asarray(rate_rps, dtype=float) * interval_s
    return FluidLoad(start, interval_s, requests, requests * 1000, requests * 200, MIX)


def _inputs(history, prefill=(1000.0, 1, 512), decode=(1000.0, 1, 512)) -> PolicyInputs:
    """One prefill and one decode pool: (tok/s per instance at the SLO, min, max)."""
    return PolicyInputs(
        pools=(PoolCapacity(PREFILL_KEY, *prefill), PoolCapacity(DECODE_KEY, *decode)),
        slo=ServiceSLO(),
        pd_ratio=4.0,
        decode_tps_per_instance=200.0,
        history=history,
    )


def _windows(load: FluidLoad):
    """What the control loop shows a controller at the end of each interval of ``load``: the
    offered load of the interval ``LAG`` intervals back (none before it exists)."""
    dt = load.interval_s
    pools = (PoolView(PREFILL_KEY, 1, 0, {}), PoolView(DECODE_KEY, 1, 0, {}))
    for t in range(load.count):
        seen = t - LAG
        offered = None
        if seen >= 0:
            requests = load.requests[seen]
            offered = {
                "request_rate_rps": requests / dt,
                "input_tps": load.prompt_tokens[seen] / dt,
                "output_tps": (load.decode_tokens[seen] + requests) / dt,
            }
        end_s = (t + 1) * dt
        now = load.start + timedelta(seconds=end_s)
        yield t, Window(now, end_s, dt, LAG * dt, pools, offered)


def _sinusoid(days: int, *, noise=0.0, seed=0, start=START, interval_s=15.0) -> np.ndarray:
    """Request rate with a daily sine (30 +- 20 req/s, peak at 06:00 UTC) plus white noise."""
    t = start.timestamp() + np.arange(round(days * DAY_S / interval_s)) * interval_s
    rate = 30 + 20 * np.sin(2 * np.pi * t / DAY_S)
    return rate + np.random.default_rng(seed).normal(0, noise, rate.size)


# -- periodic -------------------------------------------------------------------------------


def _stepped_history() -> FluidLoad:
    """Two days from 06:00 UTC at minute intervals: at hour ``h`` of the day (UTC), day 1 runs
    ``h + 1`` req/s, day 2 half of it, except one minute of 3x in 07:00-08:00 of day 2."""
    start = START + timedelta(hours=6)
    hour = ((start.timestamp() + np.arange(2 * 1440) * 60.0) % DAY_S // 3600).astype(int)
    rate = hour + 1.0
    rate[1440:] /= 2
    rate[1440 + 90] = 3 * 8.0  # 07:30 on day 2
    return _load(rate, start=start, interval_s=60.0)


def test_periodic_schedules_each_slot_for_its_peak_across_days():
    inputs = _inputs(_stepped_history(), decode=(100.0, 1, 512))
    periodic = Periodic(inputs)
    for hour in range(24):
        now = START + timedelta(days=5, hours=hour, minutes=59, seconds=45)
        decision = periodic.observe(Window(now, 0.0, 15.0, 30.0, ()))
        peak = 24.0 if hour == 7 else hour + 1.0  # req/s
        assert decision.targets == {PREFILL_KEY: round(peak), DECODE_KEY: round(2 * peak)}
        assert f"slot {hour:02d}:00-{hour + 1:02d}:00 UTC" in decision.reason
        assert f"history peak {peak * 1000:,.0f} prompt tok/s" in decision.reason


def test_periodic_headroom_and_period():
    inputs = _inputs(_stepped_history())
    periodic = Periodic(inputs, period_s=7200.0, headroom=1.5)
    assert len(periodic.schedule) == 12
    # 02:00-04:00: peak 4 req/s -> 4,000 prompt tok/s x 1.5; 800 decode tok/s x 1.5.
    assert periodic.schedule[1][0] == {PREFILL_KEY: 6, DECODE_KEY: 2}


def test_periodic_needs_a_whole_day_and_a_period_that_divides_it():
    with pytest.raises(ValueError, match="every slot"):
        Periodic(_inputs(_load(np.ones(100), interval_s=60.0)))
    with pytest.raises(ValueError, match="divide a day"):
        Periodic(_inputs(_stepped_history()), period_s=7000.0)


# -- forecast planner -----------------------------------------------------------------------


def _replay(planner: ForecastPlanner, load: FluidLoad):
    """Drive ``planner`` over ``load``; per adjustment: its window index, decision, forecast."""
    adjustments = []
    for t, window in _windows(load):
        decision = planner.observe(window)
        if decision.targets:
            adjustments.append((t, decision, planner.forecast))
    return adjustments


def test_forecast_beats_persistence_on_a_daily_sine():
    step = 900.0
    history = _load(_sinusoid(2, noise=1.0))
    run = _load(_sinusoid(1, noise=1.0, seed=1, start=START + timedelta(days=2)))
    planner = ForecastPlanner(_inputs(history), adjustment_interval_s=step)
    rate = run.requests / run.interval_s
    n = round(step / run.interval_s)
    forecast_err, persistence_err = [], []
    for t, _, forecast in _replay(planner, run)[1:-1]:  # the first observed span is partial
        first = t - LAG + 1  # the first interval after the newest observation
        observed, actual = rate[first - n : first].mean(), rate[first : first + n].mean()
        forecast_err.append(abs(forecast.request_rate_rps - actual))
        persistence_err.append(abs(observed - actual))
    assert len(forecast_err) == 94
    assert np.mean(forecast_err) < 0.3 * np.mean(persistence_err)


def test_forecast_planner_sizes_each_role_from_its_forecast():
    history = _load(_sinusoid(1, noise=1.0))
    inputs = _inputs(history, prefill=(900.0, 1, 512), decode=(1700.0, 1, 512))
    planner = ForecastPlanner(inputs)
    run = _load(_sinusoid(1, noise=1.0, seed=1, start=START + timedelta(days=1))[:400])
    adjustments = _replay(planner, run)
    assert [t for t, _, _ in adjustments] == list(range(3, 400, 4))  # every 60 s
    for _, decision, forecast in adjustments:
        # The router counts the first output token, which prefill emits: decode gets the rest.
        assert forecast.prompt_tokens == pytest.approx(1000.0)
        assert forecast.decode_tokens == pytest.approx(200.0)
        assert decision.targets == {
            **size_role(inputs, PREFILL, forecast.request_rate_rps * 1000),
            **size_role(inputs, DECODE, forecast.request_rate_rps * 200),
        }
        assert f"forecast {forecast.request_rate_rps:.2f} req/s" in decision.reason


def test_online_update_is_the_state_space_filter():
    """The planner's recursion gives what statsmodels' filter gives after each observation
    (and after a missing one, which it carries as its forecast)."""
    history = _load(_sinusoid(1, noise=3.0), interval_s=60.0)
    rate, _, _, tod_s = _aggregate(history, 60.0)
    terms = _profile_terms(tod_s, 3)
    forecaster = _ProfileARIMA(rate, terms)
    results = SARIMAX(rate, exog=terms, order=(1, 1, 0)).fit(disp=False)
    for i, value in enumerate([31.0, 35.5, 12.0, np.nan]):
        tod = np.array([tod_s[-1] + 60.0 * (i + 1), tod_s[-1] + 60.0 * (i + 2)]) % DAY_S
        step_terms = _profile_terms(tod, 3)
        results = results.extend(np.array([value]), exog=step_terms[:1])
        expected = float(results.forecast(1, exog=step_terms[1:])[0])
        assert forecaster.update(value, step_terms) == pytest.approx(expected, rel=1e-6)


def test_forecast_planner_holds_on_a_stale_window_and_adjusts_at_the_next_fresh_one():
    planner = ForecastPlanner(_inputs(_load(np.full(8, 10.0))))  # forecasts the last value
    windows = [w for _, w in _windows(_load(np.full(8, 10.0)))]
    assert planner.observe(windows[0]).targets == {}  # no offered load yet
    assert "stale" in planner.observe(windows[0]).reason
    planner.observe(windows[2])
    stale_at_adjustment = Window(windows[3].now, 60.0, 15.0, 30.0, windows[3].pools, None)
    assert planner.observe(stale_at_adjustment).targets == {}
    assert planner.forecast is None
    assert planner.observe(windows[4]).targets == {PREFILL_KEY: 10, DECODE_KEY: 2}


# -- properties -----------------------------------------------------------------------------

_bounds = st.tuples(st.integers(0, 4), st.integers(0, 30)).map(lambda b: (b[0], b[0] + b[1]))
_capacity = st.floats(100.0, 5000.0)


@settings(max_examples=25, deadline=None)
@given(
    prefill=st.tuples(_capacity, _bounds),
    decode=st.tuples(_capacity, _bounds),
    rates=st.lists(st.floats(0.0, 1e4), min_size=1, max_size=30),
)
def test_targets_stay_within_bounds(prefill, decode, rates):
    history = _load(_sinusoid(1, interval_s=300.0, noise=1.0), interval_s=300.0)
    inputs = _inputs(history, (prefill[0], *prefill[1]), (decode[0], *decode[1]))
    run = _load(np.repeat(rates, 2), start=START + timedelta(days=1), interval_s=300.0)
    for controller in (
        ForecastPlanner(inputs, adjustment_interval_s=300.0),
        Periodic(inputs, period_s=1800.0),
    ):
        for _, window in _windows(run):
            for key, count in controller.observe(window).targets.items():
                pool = inputs.pool(key)
                assert pool.min_instances <= count <= pool.max_instances


@settings(max_examples=25, deadline=None)
@given(
    history_rate=st.floats(0.0, 500.0),
    rate=st.floats(0.0, 500.0),
    prefill=st.tuples(_capacity, _bounds),
)
def test_targets_settle_under_constant_load(history_rate, rate, prefill):
    """Constant load after a constant history (at any level): the planner wants the load's
    counts at every adjustment, the schedule one count all day."""
    history = _load(np.full(288, history_rate), interval_s=300.0)
    inputs = _inputs(history, (prefill[0], *prefill[1]))
    run = _load(np.full(40, rate), start=START + timedelta(days=1), interval_s=300.0)
    expected = {**size_role(inputs, PREFILL, rate * 1000), **size_role(inputs, DECODE, rate * 200)}
    planner = ForecastPlanner(inputs, adjustment_interval_s=300.0)
    adjustments = _replay(planner, run)
    assert len(adjustments) == 38  # every window but the first two (nothing seen yet)
    assert all(decision.targets == expected for _, decision, _ in adjustments)
    periodic = Periodic(inputs)
    assert len({tuple(periodic.observe(w).targets.items()) for _, w in _windows(run)}) == 1


# -- integration: a real ServeGen day on the fluid plant ------------------------------------


def _day(load: FluidLoad, day: int) -> FluidLoad:
    per_day = round(DAY_S / load.interval_s)
    part = slice(day * per_day, (day + 1) * per_day)
    return FluidLoad(
        load.start + timedelta(days=day),
        load.interval_s,
        load.requests[part],
        load.prompt_tokens[part],
        load.decode_tokens[part],
        load.mix,
    )


def test_on_a_servegen_day_both_scale_in_below_static_peak():
    """History: ServeGen day 1; run: day 2 (a different shape), from the static-peak fleet."""
    two_days = load_from_windows(
        load_servegen_rates(), default_trace().requests, 15.0, days=2, rate_scale=0.2
    )
    history, day = _day(two_days, 0), _day(two_days, 1)
    inputs = _inputs(history, prefill=(900.0, 1, 400), decode=(1700.0, 1, 100))
    peak = StaticPeak(inputs)
    cluster = ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec(*PREFILL_KEY, peak.targets[PREFILL_KEY]),),
        decode_pools=(PoolSpec(*DECODE_KEY, peak.targets[DECODE_KEY]),),
    )
    periodic, planner = Periodic(inputs), ForecastPlanner(inputs)
    runs = {
        c.name: run_controller(FluidLoop(day, cluster), c, control_interval_s=15.0)
        for c in (peak, periodic, planner)
    }
    scores = {name: score(run, inputs.slo, pd_ratio=inputs.pd_ratio) for name, run in runs.items()}
    assert scores["periodic"]["gpu_hours"] < 0.7 * scores["static_peak"]["gpu_hours"]
    assert scores["forecast_planner"]["gpu_hours"] < 0.5 * scores["static_peak"]["gpu_hours"]

    # Prefill wanted per hour (decisions every 15 s); the day's prompt load per hour.
    hourly = {name: run.wanted[0].reshape(24, 240).mean(axis=1) for name, run in runs.items()}
    prompt = day.prompt_tokens.reshape(24, 240).sum(axis=1)
    quiet, busy = prompt.argmin(), prompt.argmax()
    # The planner follows the day it sees: its trough at the day's quietest hour.
    assert hourly["forecast_planner"][quiet] < 0.5 * hourly["forecast_planner"][busy]
    # The schedule scales in at the history's quiet hours, whatever day 2 does.
    assert hourly["periodic"].min() < 0.6 * peak.targets[PREFILL_KEY]
    assert hourly["periodic"][quiet] > hourly["periodic"][busy]  # day 2 is not day 1
    # So only the planner keeps most intervals within the SLO on a day unlike the history.
    assert scores["forecast_planner"]["slo_attainment"] > 0.85
    assert scores["forecast_planner"]["slo_attainment"] > scores["periodic"]["slo_attainment"]


def test_static_peak_sized_on_the_run_is_the_right_sized_fixed_deployment():
    """``static_hindsight``: the same sizing on the load the policy runs on, not the history."""
    two_days = load_from_windows(
        load_servegen_rates(), default_trace().requests, 15.0, days=2, rate_scale=0.2
    )
    history, day = _day(two_days, 0), _day(two_days, 1)
    inputs = _inputs(history, prefill=(900.0, 1, 400), decode=(1700.0, 1, 100))
    hindsight = StaticPeak(inputs, sized_on=day)
    assert hindsight.targets == StaticPeak(replace(inputs, history=day)).targets
    assert hindsight.targets != StaticPeak(inputs).targets
    assert hindsight.reason.startswith("static: run's own peak ")
