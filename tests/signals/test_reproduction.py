"""The paper's signal study (§5.3.2, Fig. 2) reproduced from the computation on the embedded
default telemetry: a real ServeGen m-large day simulated at request level on the default fixed
cluster, studied at the control interval. Nothing here tells the study which signal should
win; the assertions read what it found (docs/signal-study.md)."""

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.stattools import adfuller

from policies.slo import ServiceSLO
from signals.aggregate import SIGNALS
from signals.classify import SATURATED_RANGE, STRONG_P, classify
from signals.scoring import ROLE_LOAD
from signals.statistics import _adf_lag
from signals.study import paired_series, study_table
from simulator import SimulationResult, default_cluster, servegen_day, simulate

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
