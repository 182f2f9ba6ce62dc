"""The paper's signal study (§5.3.2, Fig. 2) reproduced from the computation on the embedded
default telemetry: a real ServeGen m-large day simulated at request level on the default fixed
cluster, studied at the control interval; and the same day on a cluster that HeteroScale
scales, where a per-instance gauge's relation to load moves with the pool's size and a pool's
summed throughput does not. Nothing here tells the study which signal should win; the
assertions read what it found (docs/signal-study.md)."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.stattools import adfuller

from policies.fleet import servegen_scenario
from policies.heteroscale import HeteroScaleConfig
from policies.rollout import roll_out
from policies.slo import ServiceSLO
from signals.aggregate import SIGNALS
from signals.classify import SATURATED_RANGE, STRONG_P, classify, recommend
from signals.scoring import ROLE_LOAD
from signals.statistics import _adf_lag
from signals.study import paired_series, study_table
from simulator import SimulationResult, default_cluster, servegen_day, simulate
from tests.policies.test_spec import make_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run() -> SimulationResult:
    day = servegen_day()
    return simulate(day.requests, default_cluster(), service="chat", start=day.start)


@pytest.fixture(scope="module")
def study(run) -> pl.DataFrame:
    return classify(
        study_table(run.instance_samples, run.service_load, window_s=60.0, slo=ServiceSLO())
    )


def row(table: pl.DataFrame, role: str, signal: str) -> dict:
    rows = table.filter(
        (pl.col("role") == role) & (pl.col("signal") == signal) & pl.col("gpu_type").is_null()
    )
    assert rows.height == 1, (role, signal)
    return rows.row(0, named=True)


def test_the_day_swings_the_load_of_both_roles(study):
    for role in ("prefill", "decode"):
        assert row(study, role, "gpu_util_ratio")["load_dynamic_range"] < 0.6


def test_decode_tps_is_proportional_and_the_decode_pools_best_signal(study):
    decode = study.filter(pl.col("role") == "decode").sort("rank")
    assert decode.row(0, named=True)["signal"] == "decode_tps"
    assert row(study, "decode", "decode_tps")["class"] == "proportional"


@pytest.mark.parametrize("signal", ["gpu_util_ratio", "sm_active_ratio"])
def test_decode_hardware_metrics_cannot_drive_scale_in(study, signal):
    """They stay where they were at peak when load falls by half (Fig. 2c, 2d)."""
    metric = row(study, "decode", signal)
    assert metric["dynamic_range_low"] >= SATURATED_RANGE
    assert metric["class"] != "proportional"


def test_prefill_hardware_metrics_follow_load(study):
    """The other half of the paper's "polarised" finding: prefill is compute-bound."""
    for signal in ("gpu_util_ratio", "sm_active_ratio"):
        assert row(study, "prefill", signal)["class"] == "proportional"


def test_ttft_is_noisier_than_tbt(study):
    ttft, tbt = row(study, "prefill", "ttft_p99_s"), row(study, "decode", "tbt_p99_s")
    assert ttft["steady_cv"] > 10 * tbt["steady_cv"]
    assert ttft["snr"] < tbt["snr"]


@pytest.mark.parametrize(("role", "signal"), [("prefill", "ttft_p99_s"), ("decode", "tbt_p99_s")])
def test_latencies_are_non_linear_and_fit_only_for_negative_feedback(study, role, signal):
    latency = row(study, role, signal)
    assert latency["reset_pvalue"] <= STRONG_P
    assert latency["class"] == "negative_feedback"


def test_the_adf_lag_search_chooses_statsmodels_lag_on_every_series_of_the_day(run):
    """The study's ADF test takes statsmodels' AIC lag from one factorisation instead of a fit
    per lag (signals.statistics._adf_lag); on the day it must choose the same lag everywhere."""
    paired = paired_series(run.instance_samples, run.service_load, window_s=60.0)
    checked = 0
    for (role,), group in paired.filter(pl.col("gpu_type").is_null()).group_by("role"):
        for column in (*SIGNALS, ROLE_LOAD[role]):
            series = group.sort("ts")[column].drop_nulls().to_numpy()
            if series.size > 10 and np.ptp(series) > 0:
                expected = adfuller(series, regression="c", autolag="AIC", result_object=True)
                assert _adf_lag(series) == expected.lags, (role, column)
                checked += 1
    assert checked >= 20


#: The configuration the main job's curation chose on the default fleet (docs/policy.md).
CURATED = HeteroScaleConfig(utilisation_target=0.7, scale_in_cooldown_s=300.0, scale_in_step=0.05)
#: The throughput signals: summed over a pool, they count the load it served.
THROUGHPUT = {"prefill_tps_cache_missed", "prefill_tps_total", "decode_tps"}


@pytest.fixture(scope="module")
def autoscaled() -> tuple[SimulationResult, pl.DataFrame]:
    """The day on the default hardware, scaled by HeteroScale with the fleet's pressure-tested
    ratio and target (the day is the fleet's load x 0.1, and both are per instance)."""
    inputs = servegen_scenario().plan_curation().inputs
    spec = make_spec(inputs=inputs, config=CURATED)
    decode = 2
    cluster = default_cluster()
    cluster = replace(
        cluster,
        prefill_pools=(replace(cluster.prefill_pools[0], count=round(spec.pd_ratio * decode)),),
        decode_pools=(replace(cluster.decode_pools[0], count=decode),),
    )
    rollout = roll_out(spec, servegen_day(), cluster)
    return rollout.result, rollout.decisions


@pytest.fixture(scope="module")
def autoscaled_study(autoscaled) -> pl.DataFrame:
    result, _ = autoscaled
    return classify(
        study_table(result.instance_samples, result.service_load, window_s=60.0, slo=ServiceSLO())
    )


def test_the_policy_moved_both_pools_over_the_day(autoscaled):
    _, decisions = autoscaled
    for role in ("prefill", "decode"):
        assert decisions[f"next_{role}"].max() > decisions[f"next_{role}"].min(), role


def test_under_autoscaling_hardware_gauges_stop_tracking_load(autoscaled_study):
    """A pool scaled to its load keeps each instance about as busy at night as by day, so a
    per-instance gauge no longer follows the load (Fig. 2's case against utilisation as the
    trigger); on the fixed cluster prefill's gauges were proportional."""
    for role, signal in (
        ("prefill", "gpu_util_ratio"),
        ("prefill", "sm_active_ratio"),
        ("decode", "gpu_util_ratio"),
    ):
        assert row(autoscaled_study, role, signal)["class"] == "unusable", (role, signal)


def test_under_autoscaling_only_throughput_is_proportional(autoscaled_study):
    whole_roles = autoscaled_study.filter(pl.col("gpu_type").is_null())
    proportional = whole_roles.filter(pl.col("class") == "proportional")
    assert set(proportional["signal"]) == THROUGHPUT
    decode = whole_roles.filter(pl.col("role") == "decode").sort("rank")
    assert decode.row(0, named=True)["signal"] == "decode_tps"
    assert recommend(autoscaled_study)["signal"] in THROUGHPUT
