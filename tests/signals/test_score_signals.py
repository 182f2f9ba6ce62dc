"""score_signals: linearity, scale-in response and stability of each signal against load."""

import logging

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose

from signals import score_signals
from tests.canonical_frames import instance_samples, service_load

INTERVALS = 40


@pytest.fixture(scope="module")
def study():
    """A P/D service whose decode TPS is exactly proportional to load, whose decode GPU
    utilisation sits at 0.9 plus noise, and whose prefill utilisation follows load."""
    rng = np.random.default_rng(7)
    load = rng.uniform(200.0, 2000.0, INTERVALS)
    decode = instance_samples(
        role="decode",
        instances=4,
        intervals=INTERVALS,
        decode_tps=list(load / 4),
        gpu_util_ratio=list(0.9 + rng.normal(0.0, 0.005, INTERVALS)),
        tbt_p99_s=0.04,
    )
    prefill = instance_samples(
        role="prefill",
        instances=2,
        intervals=INTERVALS,
        prefill_tps_cache_missed=list(load),
        gpu_util_ratio=list(load / 2500.0),
        ttft_p99_s=list(0.2 + 0.1 * rng.random(INTERVALS)),
    )
    samples = pl.concat([decode, prefill])
    return load, samples, score_signals(samples, service_load(list(load)))


def score(scores, role, signal):
    return scores.filter((pl.col("role") == role) & (pl.col("signal") == signal)).row(0, named=True)


def test_a_signal_linear_in_load_correlates_perfectly(study):
    _, _, scores = study
    row = score(scores, "decode", "decode_tps")
    assert row["n_intervals"] == INTERVALS
    assert_allclose([row["pearson_r"], row["spearman_rho"]], [1.0, 1.0], atol=1e-12)


def test_quintile_means_are_the_signal_over_the_lowest_and_highest_loads(study):
    load, _, scores = study
    order = np.argsort(load)
    expected_low, expected_high = load[order[:8]].mean(), load[order[-8:]].mean()
    row = score(scores, "decode", "decode_tps")
    assert_allclose(row["low_load_mean"], expected_low, rtol=1e-12)
    assert_allclose(row["high_load_mean"], expected_high, rtol=1e-12)
    assert_allclose(
        row["scale_in_response"], (expected_high - expected_low) / expected_high, rtol=1e-12
    )
    assert_allclose(row["coefficient_of_variation"], load.std(ddof=1) / load.mean(), rtol=1e-9)


def test_a_signal_that_stays_busy_at_low_load_barely_scales_in(study):
    _, _, scores = study
    busy = score(scores, "decode", "gpu_util_ratio")
    follows = score(scores, "prefill", "gpu_util_ratio")
    assert abs(busy["scale_in_response"]) < 0.02
    assert busy["coefficient_of_variation"] < 0.01
    assert follows["scale_in_response"] > 0.5
    assert_allclose(follows["pearson_r"], 1.0, atol=1e-12)


def test_pairs_without_values_are_skipped_and_logged(study, caplog):
    load, samples, scores = study
    decode_ttft = (pl.col("role") == "decode") & pl.col("signal").str.starts_with("ttft")
    prefill_tbt = (pl.col("role") == "prefill") & pl.col("signal").str.starts_with("tbt")
    assert scores.filter(decode_ttft | prefill_tbt).is_empty()
    with caplog.at_level(logging.INFO, logger="signals.scoring"):
        score_signals(samples, service_load(list(load)))
    assert "skipped 10 pairs" in caplog.text
    assert "svc/decode/ttft_p99_s" in caplog.text


def test_undefined_statistics_are_null_never_nan(study):
    _, _, scores = study
    constant = score(scores, "decode", "queue_depth")  # 0 in every interval
    assert constant["pearson_r"] is None and constant["spearman_rho"] is None
    assert constant["scale_in_response"] is None
    assert constant["coefficient_of_variation"] is None
    float_columns = [c for c, t in scores.schema.items() if t == pl.Float64]
    assert scores.select(pl.col(float_columns).is_nan().any()).row(0) == (False,) * len(
        float_columns
    )


def test_rows_are_sorted_and_unique(study):
    _, _, scores = study
    keys = scores.select("service", "role", "signal")
    assert keys.equals(keys.sort("service", "role", "signal"))
    assert keys.is_unique().all()


def test_another_load_column_can_be_the_ground_truth(study):
    load, samples, _ = study
    bent = service_load(list(load), input_tps=list(np.sqrt(load)))
    scores = score_signals(samples, bent, load_column="input_tps")
    row = score(scores, "decode", "decode_tps")
    assert_allclose(row["spearman_rho"], 1.0, atol=1e-12)  # monotone, so ranks agree ...
    assert row["pearson_r"] < 0.999  # ... but not linear


def test_unknown_load_column_and_disjoint_tables_are_errors(study):
    load, samples, _ = study
    with pytest.raises(ValueError, match="load_column"):
        score_signals(samples, service_load(list(load)), load_column="gpu_util_ratio")
    with pytest.raises(ValueError, match="matches"):
        score_signals(samples, service_load(list(load), service="other"))


def test_each_role_is_judged_against_the_load_it_serves(study):
    load, samples, scores = study
    assert dict(scores.select("role", "load_column").unique().iter_rows()) == {
        "decode": "output_tps",
        "prefill": "input_tps",
    }
    # Prefill work that follows the prompt tokens, not the output tokens, still scores 1.
    prompts = np.sqrt(load) * 40.0
    prefill = instance_samples(
        role="prefill", instances=2, intervals=INTERVALS, prefill_tps_cache_missed=list(prompts)
    )
    scores = score_signals(prefill, service_load(list(load), input_tps=list(prompts)))
    assert_allclose(score(scores, "prefill", "prefill_tps_cache_missed")["pearson_r"], 1.0)


def test_a_window_judges_signals_at_a_controllers_timescale(study):
    _, samples, native = study
    windowed = score_signals(samples, service_load(list(study[0])), window_s=60.0)
    row = score(windowed, "decode", "decode_tps")
    assert row["n_intervals"] == INTERVALS * 15 // 60
    assert row["n_intervals"] < score(native, "decode", "decode_tps")["n_intervals"]
    assert_allclose(row["pearson_r"], 1.0)  # a proportional signal stays proportional
