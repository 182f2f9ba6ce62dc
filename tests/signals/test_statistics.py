"""signals.statistics: each statistic against reference values, synthetic truths and telemetry."""

import math
import warnings

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from scipy.signal import lfilter
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.diagnostic import linear_reset
from statsmodels.tsa.stattools import acf, adfuller

from signals import ROLE_LOAD, resample, role_series
from signals.bootstrap import block_bootstrap_ci, block_bootstrap_cis, block_length
from signals.paired import MIN_INTERVALS
from signals.statistics import (
    HEADLINE,
    _adf_lag,
    breach_auc,
    correlations,
    describe,
    diagnostics,
    dynamic_range,
    generality,
    lead_lag,
    linearity,
    signal_to_noise,
)
from simulator import default_cluster, default_trace, simulate


def ar1(phi, n, rng, scale=1.0):
    """A stationary AR(1) series with innovations of standard deviation ``scale``."""
    shocks = rng.normal(0.0, scale, n)
    shocks[0] /= math.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], shocks)


@pytest.fixture(scope="module")
def sample():
    """A load and a noisy signal linear in it, with ties in the signal for Spearman."""
    rng = np.random.default_rng(11)
    load = rng.uniform(100.0, 1000.0, 200)
    return load, np.round(0.002 * load + rng.normal(0.0, 0.2, 200), 1)


# --- correlations and R² -----------------------------------------------------------------


def test_correlations_and_r_squared_equal_scipy_and_statsmodels(sample):
    load, signal = sample
    found = correlations(load, signal)
    assert_allclose(found.pearson, stats.pearsonr(load, signal).statistic, rtol=1e-12)
    assert_allclose(found.spearman, stats.spearmanr(load, signal).statistic, rtol=1e-12)
    ols = OLS(signal, np.column_stack([np.ones(load.size), load])).fit()
    assert_allclose(linearity(load, signal).r_squared, ols.rsquared, rtol=1e-10)


def test_reset_statistic_equals_statsmodels(sample):
    load, signal = sample
    ols = OLS(signal, np.column_stack([np.ones(load.size), load])).fit()
    expected = linear_reset(ols, power=3, use_f=True).fvalue
    assert_allclose(linearity(load, signal).reset_statistic, expected, rtol=1e-8)


# --- block bootstrap -----------------------------------------------------------------------


def test_block_length_grows_with_autocorrelation():
    rng = np.random.default_rng(0)
    assert block_length(rng.normal(size=400)) <= 2
    # Politis-White's target for an AR(1) with phi 0.5 at n = 400 is about 10.
    assert 5 <= block_length(ar1(0.5, 400, rng)) <= 15
    assert block_length(ar1(0.8, 400, rng)) >= 15
    assert block_length(np.ones(27)) == 3  # a constant series: ceil(n ** (1/3))


def test_block_bootstrap_covers_truth_and_is_wider_than_iid_under_autocorrelation():
    """A slowly varying load and AR(1) noise: r is known, and resampling single intervals
    as if independent understates its sampling error."""
    rng = np.random.default_rng(5)
    n, load_phi, noise_phi, noise = 300, 0.9, 0.8, 0.7
    load = ar1(load_phi, n, rng)
    signal = load + ar1(noise_phi, n, rng, scale=noise)
    load_sd = 1 / math.sqrt(1 - load_phi**2)
    noise_sd = noise / math.sqrt(1 - noise_phi**2)
    true_r = load_sd / math.hypot(load_sd, noise_sd)

    def pearson(x, y):
        return np.corrcoef(x, y)[0, 1]

    low, high = block_bootstrap_ci(load, signal, pearson)
    iid_low, iid_high = block_bootstrap_ci(load, signal, pearson, block=1)
    assert low <= true_r <= high
    assert low <= pearson(load, signal) <= high
    assert high - low > 1.5 * (iid_high - iid_low)


def test_block_bootstrap_is_reproducible_and_validates(sample):
    load, signal = sample

    def mean_signal(x, y):
        return y.mean()

    assert block_bootstrap_ci(load, signal, mean_signal, seed=3) == block_bootstrap_ci(
        load, signal, mean_signal, seed=3
    )
    with pytest.raises(ValueError, match="block"):
        block_bootstrap_ci(load, signal, mean_signal, block=load.size + 1)
    with pytest.raises(ValueError, match="level"):
        block_bootstrap_ci(load, signal, mean_signal, level=1.0)
    with pytest.raises(ValueError, match="resamples"):
        block_bootstrap_ci(load, signal, mean_signal, resamples=20)


def test_block_bootstrap_gives_no_interval_when_the_statistic_is_mostly_undefined(sample):
    load, signal = sample
    assert all(
        math.isnan(bound)
        for bound in block_bootstrap_ci(load, signal, lambda x, y: math.nan, resamples=100)
    )


def test_batched_headline_intervals_equal_reference_statistics_per_resample():
    """describe's intervals compute every replicate at once, sorting and partitioning where the
    reference sorts or calls scipy per resample; both give the same replicates, ties included."""
    rng = np.random.default_rng(13)
    load = np.round(rng.uniform(0.0, 20.0, 150))  # tied loads: the fifths split a tie
    signal = np.round(0.1 * load + rng.normal(0.0, 0.5, 150), 1)

    def fifths(x, y):
        by_load = y[np.argsort(x, kind="stable")]
        k = math.floor(x.size / 5)
        return by_load[:k].mean() / by_load[-k:].mean()

    reference = {
        "pearson": lambda x, y: stats.pearsonr(x, y).statistic,
        "spearman": lambda x, y: stats.spearmanr(x, y).statistic,
        "dynamic_range": fifths,
    }
    batched = block_bootstrap_cis(load, signal, {name: HEADLINE[name] for name in reference})
    for name, statistic in reference.items():
        assert_allclose(batched[name], block_bootstrap_ci(load, signal, statistic), rtol=1e-12)


# --- linearity, knee and cliff ---------------------------------------------------------------


def test_a_linear_relation_passes_reset_and_has_no_knee():
    rng = np.random.default_rng(1)
    load = rng.uniform(0.0, 1.0, 300)
    found = linearity(load, 2.0 * load + rng.normal(0.0, 0.1, 300))
    assert found.reset_pvalue > 0.05
    assert found.knee_pvalue > 0.05
    assert math.isnan(found.knee_load) and not found.cliff


def test_a_hockey_stick_fails_reset_and_its_knee_is_found():
    """Flat, then steep from load 0.6: a latency cliff."""
    rng = np.random.default_rng(2)
    load = rng.uniform(0.0, 1.0, 300)
    signal = 0.1 + 3.0 * np.maximum(load - 0.6, 0.0) + rng.normal(0.0, 0.02, 300)
    found = linearity(load, signal)
    assert found.reset_pvalue < 0.01
    assert found.knee_pvalue < 0.01
    assert abs(found.knee_load - 0.6) < 0.05 * 0.6
    assert_allclose([found.slope_below, found.slope_above], [0.0, 3.0], atol=0.1)
    assert found.cliff and found.slope_ratio > 10
    assert found.r_squared_gain > 0.2


def test_an_exact_line_has_nothing_left_for_a_curve():
    load = np.linspace(1.0, 2.0, 50)
    found = linearity(load, 3.0 * load + 1.0)
    assert_allclose(found.r_squared, 1.0)
    assert (found.reset_pvalue, found.knee_pvalue) == (1.0, 1.0)
    assert math.isnan(found.knee_load)


# --- dynamic range and signal-to-noise ------------------------------------------------------


def test_dynamic_range_of_a_saturating_and_a_proportional_signal():
    load = np.random.default_rng(3).uniform(0.2, 1.0, 500)
    assert dynamic_range(load, 1.0 - np.exp(-10.0 * load)) > 0.9
    order = np.argsort(load)
    expected = load[order[:100]].mean() / load[order[-100:]].mean()
    assert_allclose(dynamic_range(load, 5.0 * load), expected, rtol=1e-12)


def test_signal_to_noise_against_its_formula():
    rng = np.random.default_rng(4)
    load = rng.uniform(0.0, 10.0, 400)
    signal = 2.0 * load + rng.normal(0.0, 0.5, 400)
    found = signal_to_noise(load, signal)
    fit = stats.linregress(load, signal)
    residual_std = np.std(signal - fit.intercept - fit.slope * load, ddof=2)
    low, high = np.quantile(load, [0.05, 0.95])
    assert_allclose(found.residual_std, residual_std, rtol=1e-10)
    assert_allclose(found.snr, abs(fit.slope) * (high - low) / residual_std, rtol=1e-10)


def test_steady_cv_is_the_noise_on_load_plateaus():
    """Load steps between plateaus of 20 intervals at 50 and 80; the signal is 10 per unit load
    with 2% multiplicative noise, so its CV within a plateau is 0.02."""
    rng = np.random.default_rng(6)
    load = np.repeat(np.tile([50.0, 80.0], 10), 20)
    signal = 10.0 * load * (1.0 + rng.normal(0.0, 0.02, load.size))
    found = signal_to_noise(load, signal)
    assert found.steady_windows == 20 * 16  # windows of 5 that do not straddle a step
    assert_allclose(found.steady_cv, 0.02, rtol=0.15)
    jumpy = signal_to_noise(np.arange(1.0, 41.0) ** 2, signal[:40])
    assert jumpy.steady_windows == 0 and math.isnan(jumpy.steady_cv)


# --- lead/lag, breach prediction, diagnostics, generality -----------------------------------


def test_lead_lag_recovers_a_shift_of_a_random_walk():
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(size=403))
    load = walk[:400]
    leading = walk[3:] + rng.normal(0.0, 0.1, 400)  # the signal shows load 3 intervals early
    lagging = np.concatenate([walk[:2], walk[:398]])  # the signal follows load by 2
    assert lead_lag(load, leading, 5).lag == 3
    found = lead_lag(load, lagging, 5)
    assert found.lag == -2 and found.lag_correlation > 0.99


def test_breach_auc_of_a_signal_that_foretells_breaches_and_of_an_unrelated_one():
    rng = np.random.default_rng(8)
    signal = ar1(0.7, 1000, rng)
    foretold = np.zeros(1000, dtype=bool)
    foretold[1:] = signal[:-1] > 0.8  # a breach follows the signal crossing a threshold
    assert breach_auc(signal, foretold).breach_auc > 0.9
    unrelated = breach_auc(rng.normal(size=1000), rng.random(1000) < 0.3)
    assert abs(unrelated.breach_auc - 0.5) < 0.1 and unrelated.breach_reason == ""


def test_breach_auc_is_nan_with_a_reason_when_a_fold_has_one_class():
    signal = np.random.default_rng(9).normal(size=100)
    breaches = np.zeros(100, dtype=bool)
    breaches[90:] = True  # every breach in the last fold: nothing to learn from before it
    found = breach_auc(signal, breaches)
    assert math.isnan(found.breach_auc)
    assert "training intervals hold one class" in found.breach_reason
    with pytest.raises(ValueError, match="boolean"):
        breach_auc(signal, breaches.astype(int))


def test_diagnostics_tell_white_noise_from_a_random_walk():
    rng = np.random.default_rng(10)
    noise, walk = rng.normal(size=500), np.cumsum(rng.normal(size=500))
    white, random_walk = diagnostics(noise), diagnostics(walk)
    assert white.adf_pvalue < 0.01 and random_walk.adf_pvalue > 0.1
    assert random_walk.kpss_pvalue == 0.01  # at most: clipped at the end of the table
    assert white.kpss_pvalue > random_walk.kpss_pvalue
    assert_allclose(white.lag1_autocorrelation, acf(noise, nlags=1)[1])
    assert random_walk.lag1_autocorrelation > 0.9


@pytest.mark.parametrize(
    "series",
    [
        np.random.default_rng(14).normal(size=300),
        np.cumsum(np.random.default_rng(15).normal(size=300)),
        lfilter([1.0], [1.0, -0.5, 0.3], np.random.default_rng(16).normal(size=2000)),
        np.random.default_rng(17).normal(size=12),
        np.arange(60.0),  # constant differences: a design of deficient rank
    ],
    ids=["white-noise", "random-walk", "ar2", "short", "ramp"],
)
def test_adf_chooses_statsmodels_autolag_lag_and_gives_its_statistic(series):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ramp's regressions are singular either way
        expected = adfuller(series, regression="c", autolag="AIC", result_object=True)
        lag, found = _adf_lag(series), diagnostics(series)
    assert lag == expected.lags
    assert found.adf_pvalue == expected.pvalue


def test_generality_of_a_capacity_normalised_signal():
    """A utilisation (load over capacity) generalises across GPU types; a signal in load units
    differs by the capacity ratio until it is normalised too."""
    rng = np.random.default_rng(12)
    capacity = {"H20": 300.0, "L20": 100.0}
    load = {gpu: rng.uniform(0.1, 0.9, 200) * cap for gpu, cap in capacity.items()}
    utilisation = {gpu: x / capacity[gpu] + rng.normal(0.0, 0.01, 200) for gpu, x in load.items()}
    found = generality(load, utilisation, capacity)
    assert_allclose(list(found.slopes.values()), [1.0, 1.0], atol=0.02)
    assert_allclose(found.slope_ratio, 1.0, atol=0.05)
    assert found.slope_cv < 0.02
    assert_allclose(generality(load, load, capacity).slope_ratio, 3.0, rtol=1e-12)
    with pytest.raises(ValueError, match="two GPU types"):
        generality({"H20": load["H20"]}, {"H20": load["H20"]}, {"H20": 300.0})
    with pytest.raises(ValueError, match="capacity"):
        generality(load, utilisation, {"H20": 300.0, "L20": 0.0})


# --- degenerate input and the row --------------------------------------------------------------


def test_degenerate_input_raises_or_gives_nan_as_documented(sample):
    load, signal = sample
    with pytest.raises(ValueError, match="not finite"):
        correlations(load, np.where(np.arange(load.size) == 5, np.nan, signal))
    with pytest.raises(ValueError, match=f"at least {MIN_INTERVALS}"):
        correlations(load[: MIN_INTERVALS - 1], signal[: MIN_INTERVALS - 1])
    with pytest.raises(ValueError, match="differ in length"):
        correlations(load, signal[:-1])
    with pytest.raises(ValueError, match="load is constant"):
        correlations(np.ones(load.size), signal)
    with pytest.raises(ValueError, match="max_lag"):
        lead_lag(load[:20], signal[:20], 10)

    flat = np.full(load.size, 0.7)
    assert math.isnan(correlations(load, flat).pearson)
    assert math.isnan(linearity(load, flat).r_squared) and not linearity(load, flat).cliff
    assert dynamic_range(load, flat) == 1.0  # defined: the signal does not move at all
    assert math.isnan(signal_to_noise(load, flat).snr)
    assert math.isnan(lead_lag(load, flat, 3).lag)
    assert breach_auc(flat, signal > 1.0).breach_reason == "constant signal"
    assert math.isnan(diagnostics(flat).adf_pvalue)
    assert math.isnan(dynamic_range(load, np.where(load > 500.0, 0.0, 1.0)))  # high-load mean 0


def test_describe_is_one_flat_row_with_intervals_around_the_estimates(sample):
    load, signal = sample
    row = describe(load, signal, breach=signal > 1.5, resamples=100).as_row()
    for name in ("pearson", "spearman", "r_squared", "dynamic_range", "snr", "slope"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"], name
    assert row["slope"] == pytest.approx(np.polyfit(load, signal, 1)[0])
    assert row["n_intervals"] == load.size
    assert row["lag"] == 0 and 0.0 <= row["breach_auc"] <= 1.0
    assert all(isinstance(value, float | int | bool | str) for value in row.values())


# --- realistic telemetry ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def azure_hour():
    """An hour of the Azure 2023 conversation trace on the default cluster, per role at 60 s
    windows (the control interval) with each role's offered load."""
    trace = default_trace()
    run = simulate(trace.requests, default_cluster(), service="chat", start=trace.start)
    series = resample(role_series(run.instance_samples), 60.0, ("service", "role"))
    load = resample(run.service_load, 60.0, ("service",)).drop("interval_s")
    return series.join(load, on=["ts", "service"]).sort("role", "ts")


def describe_signal(telemetry, role, signal):
    frame = telemetry.filter(pl.col("role") == role)
    return describe(frame[ROLE_LOAD[role]].to_numpy(), frame[signal].to_numpy(), resamples=200)


def test_statistics_separate_signals_on_simulated_telemetry(azure_hour):
    """The paper's contrasts (§5.3.2) come out of the computation: decode TPS tracks load,
    decode GPU utilisation stays high at light load and bends, TTFT is noisier than TBT."""
    tps = describe_signal(azure_hour, "decode", "decode_tps")
    utilisation = describe_signal(azure_hour, "decode", "gpu_util_ratio")
    assert tps.linearity.r_squared > utilisation.linearity.r_squared
    assert tps.dynamic_range < 0.7 < 0.9 < utilisation.dynamic_range
    assert tps.intervals["dynamic_range"][1] < utilisation.intervals["dynamic_range"][0]
    assert tps.linearity.reset_pvalue > 0.05 > utilisation.linearity.reset_pvalue

    ttft = describe_signal(azure_hour, "prefill", "ttft_p99_s")
    tbt = describe_signal(azure_hour, "decode", "tbt_p99_s")
    assert ttft.signal_to_noise.steady_cv > 10 * tbt.signal_to_noise.steady_cv


def test_an_interval_over_infinite_replicates_is_infinite_without_warnings():
    load = np.linspace(1.0, 40.0, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = block_bootstrap_ci(load, 2 * load, lambda x, y: math.inf, resamples=100)
    assert (low, high) == (math.inf, math.inf)
