"""The targets the chosen policy is judged by, each judged from the fleet backtest's tables.

1. SLO attainment at least the SLO's target share of intervals (99%), for TTFT and for TBT,
   over the evaluation days.
2. Average GPU utilisation at least :data:`UTIL_GAIN_POINTS` percentage points above
   static_peak's: the gain the paper reports in production (abstract).
3. GPU-hours at most :data:`ORACLE_GPU_HOURS_BOUND` times the oracle's.
4. Fewer GPU-hours than every baseline that reaches the same SLO attainment.

A target is met or missed; a miss says by how much, in the target's own unit, and is never
rounded into a pass (the comparisons use the unrounded figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dashboards.policy_groups import CHOSEN, ORACLE, STATIC_PEAK, baselines, row
from dashboards.wording import percent, points

#: The paper's reported gain in average GPU utilisation, in percentage points.
UTIL_GAIN_POINTS = 26.6
#: Most GPU-hours the chosen policy may spend, as a multiple of the oracle's.
ORACLE_GPU_HOURS_BOUND = 1.10


@dataclass(frozen=True)
class Verdict:
    """One target's outcome.

    Attributes
    ----------
    name : str
        A few words for the headline.
    target : str
        The target, stated with its threshold.
    passed : bool or None
        None when the run lacks the policy the target compares with.
    measured : str
        What the tables say, with the figures.
    miss : str
        By how much it was missed (empty unless ``passed`` is False).
    """

    name: str
    target: str
    passed: bool | None
    measured: str
    miss: str = ""

    def line(self) -> str:
        """``PASS: <target>: <measured>.``, ``MISS by <miss>: ...`` or ``NOT JUDGED: ...``;
        the outcome comes first so a reader scanning the page cannot miss it."""
        outcome = {True: "PASS", False: f"MISS by {self.miss}", None: "NOT JUDGED"}[self.passed]
        return f"{outcome}: {self.target}: {self.measured}."


def verdicts(curated: dict, summary: pl.DataFrame, per_day: pl.DataFrame) -> list[Verdict]:
    """Judge the chosen policy against every target.

    Parameters
    ----------
    curated : dict
        The ``curated_policy`` row (for the SLO and its attainment target).
    summary, per_day : pl.DataFrame
        ``fleet_summary`` and ``fleet_per_day``; both must hold the chosen policy.

    Returns
    -------
    list of Verdict
        In the order of the module's list.
    """
    chosen = row(summary, CHOSEN)
    if chosen is None:
        raise ValueError(f"fleet_summary has no {CHOSEN!r} row: nothing to judge")
    return [
        _slo(curated, chosen, per_day),
        _utilisation(chosen, summary, per_day),
        _oracle(chosen, summary),
        _cheapest(curated, chosen, summary),
    ]


def _slo(curated: dict, chosen: dict, per_day: pl.DataFrame) -> Verdict:
    target = curated["slo_attainment_target"]
    ttft, tbt = chosen["ttft_attainment"], chosen["tbt_attainment"]
    worst = (
        per_day.filter(pl.col("policy") == CHOSEN).sort("slo_attainment", "day").row(0, named=True)
    )
    lower = "TTFT" if ttft < tbt else "TBT"
    return Verdict(
        name="SLO attainment",
        target=(
            f"SLO attainment >= {100 * target:g}% of intervals for TTFT p99 <= "
            f"{curated['ttft_p99_slo_s']:g} s and for TBT p99 <= "
            f"{1000 * curated['tbt_p99_slo_s']:g} ms over the evaluation days"
        ),
        passed=min(ttft, tbt) >= target,
        measured=(
            f"TTFT {percent(ttft)}, TBT {percent(tbt)} (95% CI of the lower over days "
            f"[{percent(chosen['slo_attainment_ci_low'])}, "
            f"{percent(chosen['slo_attainment_ci_high'])}]; worst day: day {worst['day']}, "
            f"{percent(worst['slo_attainment'])})"
        ),
        miss=f"{points(target - min(ttft, tbt), signed=False)} ({lower})",
    )


def _utilisation(chosen: dict, summary: pl.DataFrame, per_day: pl.DataFrame) -> Verdict:
    name = f"GPU utilisation gain over {STATIC_PEAK}"
    target = f"average GPU utilisation >= {UTIL_GAIN_POINTS:g} points above {STATIC_PEAK}'s"
    static = row(summary, STATIC_PEAK)
    if static is None:
        return Verdict(name, target, None, f"the backtest ran no {STATIC_PEAK}")
    gain = chosen["avg_gpu_util"] - static["avg_gpu_util"]
    daily = (
        per_day.filter(pl.col("policy").is_in([CHOSEN, STATIC_PEAK]))
        .pivot("policy", index="day", values="avg_gpu_util")
        .select(pl.col(CHOSEN) - pl.col(STATIC_PEAK))
        .to_series()
    )
    return Verdict(
        name=name,
        target=target,
        passed=100 * gain >= UTIL_GAIN_POINTS,
        measured=(
            f"{points(gain)} ({percent(chosen['avg_gpu_util'])} against "
            f"{percent(static['avg_gpu_util'])}; per evaluation day {points(daily.min())} "
            f"to {points(daily.max())})"
        ),
        miss=f"{UTIL_GAIN_POINTS - 100 * gain:.2f} points",
    )


def _oracle(chosen: dict, summary: pl.DataFrame) -> Verdict:
    name = "GPU-hours against the oracle"
    target = f"GPU-hours <= {ORACLE_GPU_HOURS_BOUND:.2f} x the {ORACLE}'s"
    oracle = row(summary, ORACLE)
    if oracle is None:
        return Verdict(name, target, None, f"the backtest ran no {ORACLE}")
    hours, bound = chosen["gpu_hours"], ORACLE_GPU_HOURS_BOUND * oracle["gpu_hours"]
    ratio = hours / oracle["gpu_hours"]
    return Verdict(
        name=name,
        target=target,
        passed=hours <= bound,
        measured=f"{ratio:.3f} x ({hours:.1f} against {oracle['gpu_hours']:.1f} GPU-hours)",
        miss=(
            f"{ratio - ORACLE_GPU_HOURS_BOUND:.3f} x the {ORACLE}'s GPU-hours "
            f"({hours - bound:.1f} GPU-hours over the bound)"
        ),
    )


def _cheapest(curated: dict, chosen: dict, summary: pl.DataFrame) -> Verdict:
    """Peers are the baselines at least as good on the SLO as the chosen policy, or as the
    target asks when the chosen policy does better than that: a baseline that keeps the SLO
    the chosen policy keeps must cost more."""
    bar = min(curated["slo_attainment_target"], chosen["slo_attainment"])
    hours = chosen["gpu_hours"]
    peers = baselines(summary).filter(pl.col("slo_attainment") >= bar).sort("gpu_hours", "policy")
    cheaper = peers.filter(pl.col("gpu_hours") <= hours)
    return Verdict(
        name="cheapest at the SLO",
        target=(
            f"fewer GPU-hours than every baseline with SLO attainment >= {percent(bar)} "
            f"(the lower of the target and {CHOSEN}'s own)"
        ),
        passed=cheaper.is_empty(),
        measured=(
            f"{hours:.1f} GPU-hours against "
            + ", ".join(f"{p} {h:.1f}" for p, h in peers.select("policy", "gpu_hours").iter_rows())
            if peers.height
            else "no baseline reaches it, so none is cheaper at it"
        ),
        miss=(
            f"{hours - cheaper['gpu_hours'].min():.1f} GPU-hours "
            f"({', '.join(cheaper['policy'])} cheaper)"
            if cheaper.height
            else ""
        ),
    )
