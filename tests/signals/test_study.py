"""signals.study and signals.classify: the study table, its classes, ranks and recommendation."""

import inspect
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from signals.aggregate import resample
from signals.classify import classify, recommend
from signals.study import study_table, target_from_data
from simulator import default_cluster, default_trace, simulate
from telemetry.schema import INSTANCE_METRIC_COLUMNS
from tests.canonical_frames import instance_samples, service_load

INTERVALS = 120
INSTANCES = 4
GAPS = 10  # intervals where one otherwise proportional signal is not reported


def decode_pool(load, rng, **overrides):
    """A decode pool of identical instances serving ``load`` output tokens/s: token throughput
    proportional to load, utilisation saturated near 0.95, TBT flat until load 850 then
    steep (a cliff), KV usage convex in load, queue depth pure noise, running requests
    proportional but missing in the first :data:`GAPS` intervals, SM activity reported in
    only 10 intervals. ``overrides`` replaces any of these series."""
    n = load.size
    metrics = {
        "decode_tps": list(load / INSTANCES + rng.normal(0.0, 5.0, n)),
        "gpu_util_ratio": list(np.clip(0.9 + 0.08 * load / 1000 + rng.normal(0, 0.005, n), 0, 1)),
        "tbt_p99_s": list(
            0.03 + rng.normal(0.0, 0.0005, n) + 0.0002 * np.maximum(load - 850.0, 0.0)
        ),
        "kv_usage_ratio": list(np.clip((load / 1100) ** 2.5 + rng.normal(0, 0.01, n), 0, 1)),
        "queue_depth": list(rng.uniform(0.0, 10.0, n)),
        "running_requests": [None] * GAPS
        + list(np.clip(load[GAPS:] / 50 + rng.normal(0, 1.0, n - GAPS), 0, None)),
        "sm_active_ratio": [0.5] * 10 + [None] * (n - 10),
    }
    return instance_samples(
        role="decode", instances=INSTANCES, intervals=n, **{**metrics, **overrides}
    )


@pytest.fixture(scope="module")
def synthetic():
    """Offered output tokens/s swinging between about 200 and 1000 over two periods, and the
    decode pool of :func:`decode_pool`."""
    rng = np.random.default_rng(3)
    t = np.arange(INTERVALS)
    load = 600 + 400 * np.sin(2 * np.pi * t / 60) + rng.normal(0.0, 20.0, INTERVALS)
    return load, decode_pool(load, rng), service_load(list(load))


@pytest.fixture(scope="module")
def classified(synthetic):
    _, samples, offered = synthetic
    return classify(study_table(samples, offered))


def candidate(frame, signal, role="decode"):
    return frame.filter((pl.col("signal") == signal) & (pl.col("role") == role)).row(0, named=True)


# --- study table ------------------------------------------------------------------------


def test_table_drops_null_intervals_and_skips_what_cannot_be_described(synthetic, caplog):
    _, samples, offered = synthetic
    with caplog.at_level(logging.INFO, logger="signals.study"):
        table = study_table(samples, offered)
    gaps = candidate(table, "running_requests")
    assert (gaps["n_intervals"], gaps["dropped_intervals"]) == (INTERVALS - GAPS, GAPS)
    assert candidate(table, "decode_tps")["dropped_intervals"] == 0
    described = set(table["signal"])
    assert "sm_active_ratio" not in described and "ttft_p99_s" not in described
    assert (
        "svc/decode/all/sm_active_ratio (10 intervals with a value, fewer than 11)" in caplog.text
    )
    assert "svc/decode/all/ttft_p99_s (no values)" in caplog.text
    assert table["gpu_type"].null_count() == table.height  # one GPU type: role rows only
    assert set(table["load_column"]) == {"output_tps"}
    assert table.select("service", "role", "gpu_type", "signal").equals(
        table.select("service", "role", "gpu_type", "signal").sort(pl.all())
    )


def test_a_short_candidate_tries_the_lags_its_length_allows(synthetic):
    load, _, offered = synthetic
    rng = np.random.default_rng(6)
    short = [None] * (INTERVALS - 12) + list(load[-12:] / 50)
    row = candidate(
        study_table(decode_pool(load, rng, running_requests=short), offered), "running_requests"
    )
    assert row["n_intervals"] == 12 and abs(row["lag"]) <= 1


def test_table_scores_breaches_against_the_roles_slo(synthetic):
    _, samples, offered = synthetic
    without = study_table(samples, offered)
    within = study_table(samples, offered, slo={"ttft_p99_s": 6.0, "tbt_p99_s": 0.05})
    assert set(without["breach_reason"]) == {"no breach series"}
    assert "no breach series" not in set(within["breach_reason"])


def test_worker_processes_describe_the_candidates_as_one_process_does(synthetic):
    _, samples, offered = synthetic
    slo = {"ttft_p99_s": 6.0, "tbt_p99_s": 0.05}
    one = study_table(samples, offered, slo=slo, workers=1)
    assert_frame_equal(study_table(samples, offered, slo=slo, workers=2), one, check_exact=True)


def test_table_has_a_row_per_gpu_type_when_a_role_runs_several(synthetic):
    load, _, offered = synthetic
    rng = np.random.default_rng(4)
    half = load / 2
    h20 = decode_pool(half, rng)
    l20 = decode_pool(half, rng).with_columns(
        gpu_type=pl.lit("L20"), instance_id=pl.col("instance_id") + "-l20"
    )
    table = study_table(pl.concat([h20, l20]), offered)
    tps = table.filter(pl.col("signal") == "decode_tps")
    assert tps["gpu_type"].to_list() == [None, "H20", "L20"]
    assert tps["n_intervals"].to_list() == [INTERVALS] * 3
    whole, h20_row = tps.row(0, named=True), tps.row(1, named=True)
    assert whole["r_squared"] > 0.9 and h20_row["r_squared"] > 0.9

    classified = classify(table)
    assert set(classified.filter(pl.col("signal") == "decode_tps")["class"]) == {"proportional"}
    assert recommend(classified)["gpu_type"] is None  # the whole role's row before a type's


# --- classification and rank --------------------------------------------------------------


def test_each_kind_of_signal_gets_its_class_and_reasons(classified):
    expected = {
        "decode_tps": ("proportional", "tracks load linearly"),
        "running_requests": ("proportional", "falls as load does"),
        "gpu_util_ratio": ("unusable", "saturated, cannot drive scale-in"),
        "tbt_p99_s": ("negative_feedback", "falls off a cliff"),
        "queue_depth": ("unusable", "noisy or decoupled"),
        "kv_usage_ratio": ("negative_feedback", "grows faster than load at the top"),
        "prefill_tps_total": ("unusable", "constant"),
    }
    for signal, (klass, words) in expected.items():
        row = candidate(classified, signal)
        assert row["class"] == klass, (signal, row["reasons"])
        assert any(words in reason for reason in row["reasons"]), (signal, row["reasons"])
    saturated = " ".join(candidate(classified, "gpu_util_ratio")["reasons"])
    assert "falls only to 0.9" in saturated  # the number, in words


def test_rank_puts_proportional_first_then_feedback_then_unusable(classified):
    assert classified["rank"].to_list() == list(range(1, classified.height + 1))
    order = {"proportional": 0, "negative_feedback": 1, "unusable": 2}
    classes = [order[c] for c in classified["class"]]
    assert classes == sorted(classes)
    proportional = classified.filter(pl.col("class") == "proportional")
    assert proportional["r_squared_low"].is_sorted(descending=True)


def test_a_candidate_matching_no_rule_is_unusable_with_the_failed_conditions(synthetic):
    """A signal with a floor (like a latency's service time) tracks load linearly but does
    not fall as load does: neither proportional nor a feedback alarm."""
    load, _, offered = synthetic
    rng = np.random.default_rng(5)
    floored = decode_pool(load, rng, decode_tps=list(500 + load / 4 + rng.normal(0, 5, load.size)))
    row = candidate(classify(study_table(floored, offered)), "decode_tps")
    assert row["class"] == "unusable"
    (reason,) = row["reasons"]
    assert reason.startswith("none of the rules for proportional control or negative feedback")
    assert "not proportional, a floor would keep the pool too large" in reason


def test_classifier_names_no_signal():
    source = Path(inspect.getsourcefile(classify)).read_text()
    assert [name for name in INSTANCE_METRIC_COLUMNS if name in source] == []


# --- recommendation and target ------------------------------------------------------------


def test_observed_target_is_the_busiest_instance_within_the_slo(synthetic):
    load, samples, _ = synthetic
    slo = {"ttft_p99_s": 6.0, "tbt_p99_s": 0.05}
    found = target_from_data(samples, slo, service="svc", role="decode", signal="decode_tps")
    per_instance = samples.filter(pl.col("instance_id") == "svc-decode-0")
    within = per_instance.filter(pl.col("tbt_p99_s") <= 0.05)
    assert found == pytest.approx(within["decode_tps"].max())
    assert per_instance["tbt_p99_s"].max() > 0.05  # the data crossed the SLO
    far = {"ttft_p99_s": 6.0, "tbt_p99_s": 1.0}
    assert target_from_data(samples, far, service="svc", role="decode", signal="decode_tps") is None


def test_observed_target_at_a_window_reads_the_windowed_series(synthetic):
    _, samples, _ = synthetic
    slo = {"ttft_p99_s": 6.0, "tbt_p99_s": 0.05}
    found = target_from_data(
        samples, slo, service="svc", role="decode", signal="decode_tps", window_s=60.0
    )
    windows = resample(
        samples.filter(pl.col("instance_id") == "svc-decode-0").select(
            "ts", "interval_s", "decode_tps", "tbt_p99_s"
        ),
        60.0,
        (),
    )
    assert found == pytest.approx(windows.filter(pl.col("tbt_p99_s") <= 0.05)["decode_tps"].max())


def test_recommendation_picks_the_proportional_signal_and_says_where_its_target_is_from(
    classified,
):
    key = ("svc", "decode", "decode_tps")
    observed = recommend(classified, observed_targets={key: 240.0}, pressure_targets={key: 300.0})
    assert observed == {
        "service": "svc",
        "signal": "decode_tps",
        "role": "decode",
        "gpu_type": None,
        "target_per_instance": 240.0,
        "target_source": "observed",
    }
    fallback = recommend(classified, observed_targets={key: None}, pressure_targets={key: 300.0})
    assert (fallback["target_per_instance"], fallback["target_source"]) == (300.0, "pressure_test")
    neither = recommend(classified)
    assert (neither["target_per_instance"], neither["target_source"]) == (None, None)


def test_no_recommendation_without_a_proportional_candidate(classified):
    assert recommend(classified.filter(pl.col("class") != "proportional")) is None
    with pytest.raises(ValueError, match="one service"):
        recommend(pl.concat([classified, classified.with_columns(service=pl.lit("other"))]))


# --- realistic telemetry ----------------------------------------------------------------------


def test_study_on_the_simulated_azure_hour_reproduces_the_papers_finding():
    """At the control interval, decode token throughput is proportional, decode GPU utilisation
    is unusable (saturated), and neither SLO latency is proportional (§5.3.2)."""
    trace = default_trace()
    run = simulate(trace.requests, default_cluster(), service="chat", start=trace.start)
    slo = {"ttft_p99_s": 6.0, "tbt_p99_s": 0.1}
    table = classify(study_table(run.instance_samples, run.service_load, window_s=60.0, slo=slo))
    assert candidate(table, "decode_tps")["class"] == "proportional"
    utilisation = candidate(table, "gpu_util_ratio")
    assert utilisation["class"] == "unusable"
    assert any("saturated" in reason for reason in utilisation["reasons"])
    assert candidate(table, "tbt_p99_s")["class"] != "proportional"
    assert candidate(table, "ttft_p99_s", role="prefill")["class"] != "proportional"
    assert recommend(table)["target_source"] is None  # the hour stays far below the SLO
