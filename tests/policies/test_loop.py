"""The control loop: what a controller observes (late, live counts, gaps) and what it logs."""

import pytest

from policies.controller import Decision, hold
from policies.loop import run_controller
from simulator import ClusterSpec, PoolSpec, default_trace
from simulator.fluid_load import load_from_windows
from simulator.fluid_loop import FluidLoop
from simulator.servegen import load_servegen_rates


@pytest.fixture(scope="module")
def hours():
    day = load_from_windows(
        load_servegen_rates(), default_trace().requests, 15.0, days=1, rate_scale=0.05
    )
    return day.part(0, 240)  # the first hour


def plant(load) -> FluidLoop:
    return FluidLoop(
        load,
        ClusterSpec(
            model="Llama-3.1-70B",
            prefill_pools=(PoolSpec("prefill", "L20", 4, 40),),
            decode_pools=(PoolSpec("decode", "H20", 4, 8),),
        ),
    )


class Recorder:
    name = "recorder"

    def __init__(self, act_at_s=None):
        self.windows = []
        self.act_at_s = act_at_s

    def observe(self, window):
        self.windows.append(window)
        if window.t_s == self.act_at_s:
            return Decision({("decode", "H20", 4): 10}, "two more")
        return hold("watching")


def test_metrics_arrive_late_by_the_lag_and_counts_are_live(hours):
    recorder = Recorder()
    run = run_controller(plant(hours), recorder, control_interval_s=60.0, lag_s=30.0)
    telemetry = run.telemetry
    window = recorder.windows[3]  # decided at the end of interval 15
    assert window.t_s == 240.0
    # the control window is intervals 10..13 (60 s ending 30 s before the decision)
    expected = telemetry.metric("decode_tps")[1, 10:14].mean()
    assert window.of_role("decode")[0].metrics["decode_tps"] == pytest.approx(expected)
    assert window.load["request_rate_rps"] == pytest.approx(hours.requests[10:14].sum() / 60)


def test_a_pools_total_counts_the_instances_that_reported_not_those_ready_since(hours):
    """Two decode instances become ready: for a lag the metrics still come from the eight
    that were ready, so the pool's total is their mean times eight, not ten."""
    recorder = Recorder(act_at_s=300.0)
    run = run_controller(plant(hours), recorder, control_interval_s=15.0, lag_s=30.0)
    first_ten = next(w for w in recorder.windows if w.of_role("decode")[0].ready == 10)
    decode = first_ten.of_role("decode")[0]
    assert decode.reporting == 8
    observed = round(first_ten.t_s / 15.0) - 1 - 2  # the interval seen, 2 intervals late
    total = run.telemetry.metric("decode_tps")[1, observed] * run.telemetry.ready[1, observed]
    assert run.telemetry.ready[1, observed] == 8
    assert first_ten.total("decode_tps", "decode") == pytest.approx(total)


def test_no_metrics_before_the_first_window_and_none_across_a_failed_scrape(hours):
    recorder = Recorder()
    run_controller(plant(hours), recorder, control_interval_s=15.0, lag_s=30.0, missing={20})
    by_t = {w.t_s: w for w in recorder.windows}
    assert by_t[15.0].stale and by_t[15.0].load is None  # nothing observed yet
    assert by_t[(20 + 2 + 1) * 15.0].stale  # interval 20 missing, seen 2 intervals late
    assert not by_t[(21 + 2 + 1) * 15.0].stale


def test_changes_are_logged_with_their_reason_and_reach_the_plant(hours):
    run = run_controller(plant(hours), Recorder(act_at_s=150.0), control_interval_s=15.0)
    log = run.decisions.to_dicts()
    assert log == [
        {
            "t_s": 150.0,
            "role": "decode",
            "gpu_type": "H20",
            "gpus_per_instance": 4,
            "from_instances": 8,
            "to_instances": 10,
            "reason": "two more",
        }
    ]
    assert run.holds == hours.count - 1
    assert run.telemetry.provisioned[1, 10] == 10  # paid from the next interval on


def test_a_control_interval_must_be_whole_telemetry_intervals(hours):
    with pytest.raises(ValueError, match="whole number"):
        run_controller(plant(hours), Recorder(), control_interval_s=20.0)
