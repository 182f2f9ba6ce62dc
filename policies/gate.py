"""The publication gate: a curated policy is published only if it earned it on unseen days.

Curation (Algorithm 1) chooses a configuration on the curation days, so its own figures cannot
vouch for it. The gate reads the fleet backtest's evaluation days instead (``fleet_summary``,
days curation never saw) and asks the two questions a platform team asks before it lets an
autoscaler touch a service: does it hold the SLO as often as the SLO demands, for TTFT and for
TBT, and does it cost less than provisioning for the peak (``static_peak``), the thing it
replaces? Both must hold; the verdict says why in words either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

#: The policy provisioning for the peak, which an autoscaler must beat on GPU-hours.
STATIC_BASELINE = "static_peak"


@dataclass(frozen=True)
class Verdict:
    """The gate's answer and its evidence (all figures over the evaluation days).

    Attributes
    ----------
    passed : bool
    reasons : tuple of str
        One sentence per criterion, met or missed, with the figures.
    policy : str
    slo_attainment_target : float
        Share of intervals each latency quantile must stay within its SLO.
    ttft_attainment, tbt_attainment : float or None
        The policy's shares of intervals within the TTFT / TBT SLO (None: not evaluated).
    gpu_hours, static_peak_gpu_hours : float or None
    """

    passed: bool
    reasons: tuple[str, ...]
    policy: str
    slo_attainment_target: float
    ttft_attainment: float | None
    tbt_attainment: float | None
    gpu_hours: float | None
    static_peak_gpu_hours: float | None

    def summary(self) -> str:
        """The reasons as one line, led by the outcome."""
        outcome = "passed" if self.passed else "failed"
        return f"{self.policy} {outcome} the publication gate: " + "; ".join(self.reasons)


def validate(summary: pl.DataFrame, *, target: float, policy: str = "heteroscale") -> Verdict:
    """Judge ``policy`` on the fleet backtest's evaluation-day scores.

    Parameters
    ----------
    summary : pl.DataFrame
        ``fleet_summary`` (:func:`policies.fleet.run_fleet_backtest`): one row per policy with
        ``ttft_attainment``, ``tbt_attainment`` and ``gpu_hours`` over the evaluation days.
    target : float
        The SLO's attainment target (``slo_attainment_target`` of ``curated_policy``).
    policy : str
        The row to judge.

    Returns
    -------
    Verdict
        Passed when TTFT and TBT attainment are each at least ``target`` and GPU-hours are
        strictly fewer than :data:`STATIC_BASELINE`'s. A missing row or a missing (NaN)
        figure fails, saying which.
    """
    rows = _rows(summary)
    scores, static = rows.get(policy, {}), rows.get(STATIC_BASELINE, {})
    ttft, tbt = _figure(scores, "ttft_attainment"), _figure(scores, "tbt_attainment")
    hours, static_hours = _figure(scores, "gpu_hours"), _figure(static, "gpu_hours")
    if not scores:
        reasons = [f"no evaluation-day scores for {policy} in the fleet backtest"]
    else:
        reasons = [
            _attainment_reason("TTFT p99", ttft, target),
            _attainment_reason("TBT p99", tbt, target),
            _cost_reason(hours, static_hours),
        ]
    met = (
        ttft is not None
        and tbt is not None
        and min(ttft, tbt) >= target
        and hours is not None
        and static_hours is not None
        and hours < static_hours
    )
    return Verdict(
        passed=met,
        reasons=tuple(reasons),
        policy=policy,
        slo_attainment_target=target,
        ttft_attainment=ttft,
        tbt_attainment=tbt,
        gpu_hours=hours,
        static_peak_gpu_hours=static_hours,
    )


def _rows(summary: pl.DataFrame) -> dict[str, Mapping]:
    return {row["policy"]: row for row in summary.iter_rows(named=True)}


def _figure(row: Mapping, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or math.isnan(value) else float(value)


def _attainment_reason(name: str, share: float | None, target: float) -> str:
    if share is None:
        return f"{name} attainment was not measured: missed"
    measured = f"{name} within its SLO in {share:.2%} of evaluation intervals (target {target:.2%})"
    if share >= target:
        return f"{measured}: met"
    return f"{measured}: missed by {(target - share) * 100:.2f} points"


def _cost_reason(hours: float | None, static_hours: float | None) -> str:
    if hours is None:
        return "GPU-hours were not measured: missed"
    if static_hours is None:
        return f"{hours:,.0f} GPU-hours, but no {STATIC_BASELINE} run to compare with: missed"
    baseline = f"{STATIC_BASELINE}'s {static_hours:,.0f}"
    if hours < static_hours:
        return f"{hours:,.0f} GPU-hours, {1 - hours / static_hours:.1%} fewer than {baseline}: met"
    return f"{hours:,.0f} GPU-hours, {hours / static_hours - 1:.1%} more than {baseline}: missed"
