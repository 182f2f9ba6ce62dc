"""The decision in words: every verdict and figure comes from the tables, and a miss reads as
"MISS" with its size, even when it is small."""

import polars as pl
import pytest

from dashboards import ablation_lines, decision_card, decision_sections, mode_lines, verdicts
from policies.gate import validate

KEYS = ("curated_policy", "curation_candidates", "fleet_summary", "fleet_per_day")
TARGET = 0.99


def with_values(table: pl.DataFrame, policy: str, **values) -> pl.DataFrame:
    """``table`` with the given columns set on ``policy``'s rows."""
    return table.with_columns(
        pl.when(pl.col("policy") == policy).then(pl.lit(v)).otherwise(pl.col(k)).alias(k)
        for k, v in values.items()
    )


def sections(tables, **replaced) -> dict[str, list[str]]:
    chosen = tables | replaced
    return decision_sections(**{key: chosen[key] for key in KEYS})


def one(lines: list[str], start: str) -> str:
    (line,) = (line for line in lines if start in line)
    return line


def value(summary: pl.DataFrame, policy: str, column: str):
    return summary.filter(pl.col("policy") == policy)[column].item()


def test_each_verdict_is_judged_from_the_tables(tables):
    summary = tables["fleet_summary"]
    hetero = summary.filter(pl.col("policy") == "heteroscale").row(0, named=True)
    bar = min(TARGET, hetero["slo_attainment"])
    policy = pl.col("policy")
    baselines = summary.filter(
        ~policy.is_in(["heteroscale", "oracle"]) & ~policy.str.starts_with("heteroscale_without_")
    )
    cheaper = baselines.filter(
        (pl.col("slo_attainment") >= bar) & (pl.col("gpu_hours") <= hetero["gpu_hours"])
    )
    expected = [
        min(hetero["ttft_attainment"], hetero["tbt_attainment"]) >= TARGET,
        100 * (hetero["avg_gpu_util"] - value(summary, "static_peak", "avg_gpu_util")) >= 26.6,
        hetero["gpu_hours"] <= 1.1 * value(summary, "oracle", "gpu_hours"),
        cheaper.is_empty(),
    ]
    judged = verdicts(tables["curated_policy"].row(0, named=True), summary, tables["fleet_per_day"])
    assert [v.passed for v in judged] == expected
    lines = sections(tables)["Targets"]
    assert [line.startswith("PASS: ") for line in lines] == expected
    assert [line.startswith("MISS by ") for line in lines] == [not e for e in expected]
    headline = sections(tables)["Chosen policy"][0]
    assert headline.startswith(f"heteroscale meets {sum(expected)} of 4 targets")


def test_a_missed_slo_is_a_miss_with_its_size_and_the_lower_quantile(tables):
    summary = with_values(
        tables["fleet_summary"], "heteroscale", tbt_attainment=0.9712, slo_attainment=0.9712
    )
    text = sections(tables, fleet_summary=summary)
    assert text["Targets"][0].startswith(
        "MISS by 1.88 points (TBT): SLO attainment >= 99% of intervals for TTFT p99 <= 6 s and "
        "for TBT p99 <= 100 ms over the evaluation days: TTFT "
    )
    assert "TBT 97.12%" in text["Targets"][0]
    assert "MISS: SLO attainment" in text["Chosen policy"][0]


def test_a_utilisation_gain_a_hair_short_is_still_a_miss(tables):
    hetero = value(tables["fleet_summary"], "heteroscale", "avg_gpu_util")
    short = with_values(tables["fleet_summary"], "static_peak", avg_gpu_util=hetero - 0.2659)
    line = sections(tables, fleet_summary=short)["Targets"][1]
    assert line.startswith("MISS by 0.01 points: average GPU utilisation >= 26.6 points above")
    assert "+26.59 points" in line
    enough = with_values(tables["fleet_summary"], "static_peak", avg_gpu_util=hetero - 0.27)
    assert sections(tables, fleet_summary=enough)["Targets"][1].startswith("PASS: ")


def test_gpu_hours_over_the_oracle_bound_say_by_how_much(tables):
    oracle = value(tables["fleet_summary"], "oracle", "gpu_hours")
    over = with_values(tables["fleet_summary"], "heteroscale", gpu_hours=1.2 * oracle)
    line = sections(tables, fleet_summary=over)["Targets"][2]
    assert line.startswith(
        f"MISS by 0.100 x the oracle's GPU-hours ({0.1 * oracle:.1f} GPU-hours over the bound): "
        "GPU-hours <= 1.10 x the oracle's: 1.200 x"
    )
    within = with_values(tables["fleet_summary"], "heteroscale", gpu_hours=1.05 * oracle)
    assert sections(tables, fleet_summary=within)["Targets"][2].startswith("PASS: ")


def test_a_baseline_cheaper_at_the_same_slo_is_a_miss(tables):
    summary = tables["fleet_summary"]
    hours = value(summary, "heteroscale", "gpu_hours")
    for policy in ("static_peak", "hpa_gpu_util", "independent_tps"):
        summary = with_values(summary, policy, gpu_hours=hours + 50.0)
    summary = with_values(summary, "periodic", gpu_hours=hours - 100.0, slo_attainment=1.0)
    # Cheaper still, but far below the SLO: no peer.
    summary = with_values(summary, "saturation", gpu_hours=hours - 500.0, slo_attainment=0.5)
    line = sections(tables, fleet_summary=summary)["Targets"][3]
    assert line.startswith("MISS by 100.0 GPU-hours (periodic cheaper): fewer GPU-hours")
    fair = with_values(summary, "periodic", gpu_hours=hours + 1.0)
    assert sections(tables, fleet_summary=fair)["Targets"][3].startswith("PASS: ")


def test_the_right_sized_static_deployment_is_a_reference_said_against_not_a_baseline(tables):
    """Sized in hindsight on the evaluation days, it could not be run: however cheap, it is
    not the baseline to beat, and the savings say what the chosen policy saves against it."""
    summary = tables["fleet_summary"]
    hours = value(summary, "heteroscale", "gpu_hours")
    cheap = with_values(summary, "static_hindsight", gpu_hours=hours / 2, slo_attainment=1.0)
    text = sections(tables, fleet_summary=cheap)
    assert "fewer GPU-hours than every baseline" in text["Targets"][3]
    assert "static_hindsight" not in text["Targets"][3]
    against = [line for line in text["Savings"] if line.startswith("Against static_hindsight")]
    assert len(against) == 1 and f"against {hours / 2:.1f}" in against[0]


def test_a_target_without_its_reference_policy_is_not_judged(tables):
    summary = tables["fleet_summary"].filter(pl.col("policy") != "oracle")
    text = sections(tables, fleet_summary=summary)
    assert text["Targets"][2].startswith("NOT JUDGED: GPU-hours <= 1.10 x the oracle's")
    assert "not judged: GPU-hours against the oracle" in text["Chosen policy"][0]


def test_a_summary_without_the_chosen_policy_is_refused(tables):
    summary = tables["fleet_summary"].filter(pl.col("policy") != "heteroscale")
    with pytest.raises(ValueError, match="heteroscale"):
        sections(tables, fleet_summary=summary)


def test_every_policy_below_the_slo_is_listed_with_its_shortfall(tables):
    summary = tables["fleet_summary"]
    policy = pl.col("policy")
    below = summary.filter(
        (policy != "heteroscale")
        & ~policy.str.starts_with("heteroscale_without_")
        & (pl.col("slo_attainment") < TARGET)
    )
    lines = sections(tables)["Policies that miss the SLO"]
    assert below.height == len(lines) > 0
    for r in below.iter_rows(named=True):
        assert one(lines, f"{r['policy']}: ").startswith(
            f"{r['policy']}: MISS by {100 * (TARGET - r['slo_attainment']):.2f} points: SLO "
            f"attainment {100 * r['slo_attainment']:.2f}%"
        )
    kept = summary.with_columns(slo_attainment=pl.lit(1.0))
    assert sections(tables, fleet_summary=kept)["Policies that miss the SLO"] == [
        "Every baseline and the oracle meet the 99% target."
    ]


def test_ablations_say_what_each_mechanism_saves_and_buys(tables):
    summary = tables["fleet_summary"]
    hours = value(summary, "heteroscale", "gpu_hours")
    slo = value(summary, "heteroscale", "slo_attainment")
    summary = with_values(
        summary, "heteroscale_without_soft_scale_in", gpu_hours=hours - 10.0, slo_attainment=1.0
    )
    summary = with_values(
        summary,
        "heteroscale_without_latency_feedback",
        gpu_hours=hours + 40.0,
        slo_attainment=slo - 0.05,
    )
    lines = ablation_lines(summary)
    assert len(lines) == 3
    assert one(lines, "soft scale in:").startswith(
        f"soft scale in: costs 10.0 GPU-hours ({10 / (hours - 10):.1%}) and loses "
        f"{100 * (1 - slo):.2f} points of SLO attainment"
    )
    assert one(lines, "soft scale in:").endswith(
        "worth nothing in GPU-hours or SLO attainment on these days."
    )
    feedback = one(lines, "latency feedback:")
    assert feedback.startswith("latency feedback: saves 40.0 GPU-hours")
    assert "buys 5.00 points of SLO attainment" in feedback
    assert "worth nothing" not in feedback


def test_the_configuration_and_its_provenance_come_from_the_curated_row(tables):
    curated = tables["curated_policy"].with_columns(
        pd_ratio=pl.lit(3.5), scale_in_cooldown_s=pl.lit(420.0), met_objective=pl.lit(False)
    )
    lines = sections(tables, curated_policy=curated)["Chosen policy"]
    text = "\n".join(lines)
    row = curated.row(0, named=True)
    assert "split at P/D 3.50" in text
    assert f"{row['decode_tps_per_instance']:,.1f} decode tok/s per instance" in text
    assert "cool-downs 30 s out, 420 s in" in text
    assert "NOT meeting the curation objective" in text
    assert f"among {tables['curation_candidates'].height} candidate configuration(s)" in text
    assert "evaluated on 2 unseen day(s), 2024-01-02 00:00 to 2024-01-04 00:00 UTC" in text
    assert row["source"] in text


def test_savings_compare_with_both_static_deployments_and_the_best_baseline_at_the_slo(tables):
    summary = tables["fleet_summary"]
    hours = value(summary, "heteroscale", "gpu_hours")
    static = value(summary, "static_peak", "gpu_hours")
    lines = sections(tables)["Savings"]
    assert lines[0].startswith(f"Against static_peak: {hours:.1f} GPU-hours (95% CI over days [")
    low, high = (value(summary, "heteroscale", f"avg_gpu_util_ci_{end}") for end in ("low", "high"))
    assert f"[{100 * low:.1f}% to {100 * high:.1f}%] against" in lines[0]
    assert f"{hours - static:+.1f} GPU-hours ({hours / static - 1:+.1%})" in lines[0]
    only_static = summary.with_columns(
        slo_attainment=pl.when(pl.col("policy") == "static_peak")
        .then(1.0)
        .otherwise(pl.col("slo_attainment").clip(upper_bound=0.98))
    )
    assert lines[1].startswith("Against static_hindsight (a fixed deployment sized, in hindsight")
    assert sections(tables, fleet_summary=only_static)["Savings"][2] == (
        "The best baseline that meets the SLO is static_peak itself."
    )
    none = summary.with_columns(slo_attainment=pl.lit(0.9))
    assert sections(tables, fleet_summary=none)["Savings"][2].startswith(
        "No baseline meets the 99% SLO attainment target"
    )


def test_mode_gaps_are_the_request_rows_gaps(tables):
    request = tables["mode_agreement"].filter(pl.col("mode") == "request")
    lines = mode_lines(tables["mode_agreement"])
    assert f"on the same {request['requests'].max():,} requests" in lines[0]
    for r in request.iter_rows(named=True):
        assert one(lines, f"{r['policy']}: ") == (
            f"{r['policy']}: GPU-hours {r['gpu_hours_gap']:+.1%}, GPU utilisation "
            f"{100 * r['avg_gpu_util_gap']:+.2f} points, TTFT attainment "
            f"{100 * r['ttft_attainment_gap']:+.2f} points, TBT attainment "
            f"{100 * r['tbt_attainment_gap']:+.2f} points, scaling actions "
            f"{r['scaling_actions_gap']:+d}."
        )


def card(tables, **replaced) -> dict[str, tuple[str, bool | None]]:
    chosen = tables | replaced
    keys = {"curated_policy", "signal_study", "signal_recommendation"} | set(KEYS[2:])
    rows = decision_card(**{key: chosen[key] for key in keys})
    return {label: (text, passed) for label, text, passed in rows}


def test_the_card_states_the_slo_and_the_gate_as_the_gate_judges_them(tables):
    summary = tables["fleet_summary"]
    rows = card(tables)
    gate = validate(summary, target=TARGET)
    text, passed = rows["Publication gate"]
    assert passed is gate.passed
    assert text.startswith("passed: " if gate.passed else "FAILED: ")
    text, passed = rows["SLO"]
    ttft = value(summary, "heteroscale", "ttft_attainment")
    assert passed is (min(ttft, value(summary, "heteroscale", "tbt_attainment")) >= TARGET)
    assert f"TTFT p99 <= 6 s in {100 * ttft:.2f}%" in text
    missed = with_values(summary, "heteroscale", tbt_attainment=0.9712, slo_attainment=0.9712)
    rows = card(tables, fleet_summary=missed)
    assert rows["SLO"][0].startswith("MISSED by 1.88 points (TBT): ") and not rows["SLO"][1]
    assert rows["Publication gate"] == (
        "FAILED: the main job exports nothing for it; do not deploy it as it is.",
        False,
    )
    assert rows["Targets"][1] is False


def test_the_card_gives_the_saving_with_its_intervals(tables):
    summary = with_values(tables["fleet_summary"], "static_peak", gpu_hours=2_000.0)
    summary = with_values(
        summary,
        "heteroscale",
        gpu_hours=1_500.0,
        gpu_hours_ci_low=1_400.0,
        gpu_hours_ci_high=1_650.0,
    )
    text, passed = card(tables, fleet_summary=summary)["Against static_peak"]
    assert passed is None
    assert text.startswith("saves 500 GPU-hours (25.0%): 1,500 [1,400 to 1,650] against 2,000 [")
    costly = with_values(summary, "heteroscale", gpu_hours=2_200.0)
    assert card(tables, fleet_summary=costly)["Against static_peak"][0].startswith(
        "COSTS 200 GPU-hours (10.0%)"
    )
    hours = value(summary, "heteroscale", "gpu_hours")
    peer = with_values(summary, "periodic", gpu_hours=hours + 100.0, slo_attainment=1.0)
    text, _ = card(tables, fleet_summary=peer)["Against the best baseline at the SLO"]
    assert text.startswith("periodic: saves 100 GPU-hours")
    alone = summary.with_columns(
        slo_attainment=pl.when(pl.col("policy") == "static_peak").then(1.0).otherwise(0.5)
    )
    assert card(tables, fleet_summary=alone)["Against the best baseline at the SLO"][0] == (
        "static_peak: no other baseline meets the 99% SLO target."
    )


def test_the_card_states_the_configuration_from_the_curated_row(tables):
    curated = tables["curated_policy"].with_columns(pd_ratio=pl.lit(3.5))
    text, passed = card(tables, curated_policy=curated)["Configuration"]
    row = curated.row(0, named=True)
    assert passed is None
    assert list(card(tables)) == [
        "SLO",
        "Publication gate",
        "Signal",
        "Configuration",
        "Against static_peak",
        "Against static_hindsight",
        "Against the best baseline at the SLO",
        "Targets",
    ]
    assert card(tables)["Signal"][0].startswith("the study recommends ")
    assert text.startswith(
        f"scale prefill and decode together on the decode pool's {row['signal']}: "
        f"{row['decode_tps_per_instance']:,.1f} decode tok/s per instance"
    )
    assert f"P/D 3.50 ({row['prefill_gpu_type']} prefill, {row['decode_gpu_type']} decode)" in text
