"""The publication gate: SLO attainment for TTFT and TBT at the target, and fewer GPU-hours
than static peak, on the evaluation days; every verdict explains itself."""

import math

import polars as pl
import pytest

from policies.gate import validate


def summary(*, ttft=0.995, tbt=0.999, hours=50_000.0, static=100_000.0, policies=None):
    rows = {
        "heteroscale": (hours, ttft, tbt),
        "static_peak": (static, 1.0, 1.0),
        "independent_tps": (40_000.0, 0.96, 0.99),
    }
    rows = {k: v for k, v in rows.items() if policies is None or k in policies}
    return pl.DataFrame(
        [
            {"policy": k, "gpu_hours": h, "ttft_attainment": t, "tbt_attainment": b}
            for k, (h, t, b) in rows.items()
        ]
    )


def test_a_policy_that_holds_the_slo_and_saves_passes_with_its_figures():
    verdict = validate(summary(), target=0.99)
    assert verdict.passed
    assert verdict.reasons == (
        "TTFT p99 within its SLO in 99.50% of evaluation intervals (target 99.00%): met",
        "TBT p99 within its SLO in 99.90% of evaluation intervals (target 99.00%): met",
        "50,000 GPU-hours, 50.0% fewer than static_peak's 100,000: met",
    )
    assert (verdict.gpu_hours, verdict.static_peak_gpu_hours) == (50_000.0, 100_000.0)
    assert verdict.summary().startswith("heteroscale passed the publication gate: TTFT")


@pytest.mark.parametrize(
    ("scores", "missed"),
    [
        (
            {"ttft": 0.9817},
            "TTFT p99 within its SLO in 98.17% of evaluation intervals "
            "(target 99.00%): missed by 0.83 points",
        ),
        (
            {"tbt": 0.97},
            "TBT p99 within its SLO in 97.00% of evaluation intervals "
            "(target 99.00%): missed by 2.00 points",
        ),
        ({"hours": 120_000.0}, "120,000 GPU-hours, 20.0% more than static_peak's 100,000: missed"),
        ({"hours": 100_000.0}, "100,000 GPU-hours, 0.0% more than static_peak's 100,000: missed"),
        ({"ttft": math.nan}, "TTFT p99 attainment was not measured: missed"),
    ],
)
def test_a_policy_that_misses_either_criterion_fails_saying_which(scores, missed):
    verdict = validate(summary(**scores), target=0.99)
    assert not verdict.passed
    assert missed in verdict.reasons
    assert verdict.summary().startswith("heteroscale failed the publication gate")
    assert sum(reason.endswith(": met") for reason in verdict.reasons) == 2


def test_attainment_exactly_at_the_target_meets_it():
    assert validate(summary(ttft=0.99, tbt=0.99), target=0.99).passed


def test_without_static_peak_there_is_nothing_to_beat_and_it_fails():
    verdict = validate(summary(policies={"heteroscale"}), target=0.99)
    assert not verdict.passed
    assert "no static_peak run to compare with: missed" in verdict.reasons[-1]


def test_a_policy_with_no_evaluation_fails():
    verdict = validate(summary(policies={"static_peak"}), target=0.99)
    assert not verdict.passed
    assert verdict.reasons == ("no evaluation-day scores for heteroscale in the fleet backtest",)


def test_another_row_can_be_judged():
    verdict = validate(summary(), target=0.99, policy="independent_tps")
    assert not verdict.passed and verdict.policy == "independent_tps"
    assert verdict.reasons[0].endswith("missed by 3.00 points")
