"""The report's decision in words: which policy was chosen, what it saves, whether it met its
targets and passed the publication gate, each sentence computed from the fleet backtest's
tables; and, for the backtest's page, what each mechanism is worth and what the controller did.

A reader should be able to act on the overview alone: the configuration to deploy, the saving
to expect with its uncertainty, the targets missed and by how much, and which peers fail the SLO.
"""

from __future__ import annotations

import polars as pl

from dashboards.policy_groups import (
    ABLATION_PREFIX,
    CHOSEN,
    STATIC_HINDSIGHT,
    STATIC_PEAK,
    ablations,
    best_baseline,
    mechanism,
    row,
)
from dashboards.signal_summary import signal_brief
from dashboards.targets import Verdict, verdicts
from dashboards.wording import ci, percent, points
from policies.gate import Verdict as GateVerdict
from policies.gate import validate
from policies.scoring import DAY_S


def decision_sections(
    *,
    curated_policy: pl.DataFrame,
    curation_candidates: pl.DataFrame,
    fleet_summary: pl.DataFrame,
    fleet_per_day: pl.DataFrame,
) -> dict[str, list[str]]:
    """The decision, section by section.

    Parameters
    ----------
    curated_policy : pl.DataFrame
        One row: the chosen configuration, the SLO, where and when it was curated.
    curation_candidates : pl.DataFrame
        Every candidate configuration curation scored (to say what it was chosen among).
    fleet_summary, fleet_per_day : pl.DataFrame
        Every policy's scores over the evaluation days, and per day.

    Returns
    -------
    dict of str to list of str
        Section title -> its lines, in reading order: the chosen policy (headline verdict and
        the publication gate's first), savings, targets, policies that miss the SLO.
    """
    curated = curated_policy.row(0, named=True)
    chosen = row(fleet_summary, CHOSEN)
    judged = verdicts(curated, fleet_summary, fleet_per_day)
    return {
        "Chosen policy": [
            _headline(judged),
            _gate_line(_gate(curated, fleet_summary)),
            *_configuration(curated),
            _provenance(curated, curation_candidates, fleet_per_day),
        ],
        "Savings": _savings(curated, chosen, fleet_summary),
        "Targets": [verdict.line() for verdict in judged],
        "Policies that miss the SLO": _slo_misses(curated, fleet_summary),
    }


def decision_card(
    *,
    curated_policy: pl.DataFrame,
    signal_study: pl.DataFrame,
    signal_recommendation: pl.DataFrame,
    fleet_summary: pl.DataFrame,
    fleet_per_day: pl.DataFrame,
) -> list[tuple[str, str, bool | None]]:
    """The decision in a few short rows, for the first screen.

    Parameters
    ----------
    curated_policy, fleet_summary, fleet_per_day : pl.DataFrame
        As :func:`decision_sections`.
    signal_study, signal_recommendation : pl.DataFrame
        The study's ranked candidates and its recommendation (:func:`signals.run_study`).

    Returns
    -------
    list of (str, str, bool or None)
        Label, text and whether it passed (None where nothing is judged): the SLO verdict, the
        publication gate's (:func:`policies.gate.validate`, the function the main job's
        blocking check calls), the recommended signal (:func:`signal_brief`), the
        configuration, the saving against static_peak, static_hindsight and the best baseline
        at the SLO (GPU-hours and utilisation with their 95% CIs over days), and the targets
        met.
    """
    curated = curated_policy.row(0, named=True)
    chosen = row(fleet_summary, CHOSEN)
    judged = verdicts(curated, fleet_summary, fleet_per_day)
    slo, gate = judged[0], _gate(curated, fleet_summary)
    target = curated["slo_attainment_target"]
    rows = [
        (
            "SLO",
            f"{'met' if slo.passed else f'MISSED by {slo.miss}'}: TTFT p99 <= "
            f"{curated['ttft_p99_slo_s']:g} s in {percent(chosen['ttft_attainment'])} and TBT "
            f"p99 <= {1000 * curated['tbt_p99_slo_s']:g} ms in "
            f"{percent(chosen['tbt_attainment'])} of the evaluation intervals (target "
            f"{100 * target:g}% each).",
            slo.passed,
        ),
        (
            "Publication gate",
            "passed: the main job exports the policy spec and its manifests beside the store."
            if gate.passed
            else "FAILED: the main job exports nothing for it; do not deploy it as it is.",
            gate.passed,
        ),
        ("Signal", signal_brief(signal_study, signal_recommendation, curated_policy), None),
        (
            "Configuration",
            f"scale prefill and decode together on the decode pool's {curated['signal']}: "
            f"{curated['decode_tps_per_instance']:,.1f} decode tok/s per instance at "
            f"{curated['utilisation_target']:.0%} of it, P/D {curated['pd_ratio']:.2f} "
            f"({curated['prefill_gpu_type']} prefill, {curated['decode_gpu_type']} decode); act "
            f"outside +{curated['scale_out_threshold']:.0%} / -{curated['scale_in_threshold']:.0%}"
            f", cool-downs {curated['scale_out_cooldown_s']:g} s out, "
            f"{curated['scale_in_cooldown_s']:g} s in.",
            None,
        ),
    ]
    static = row(fleet_summary, STATIC_PEAK)
    if static is not None:
        rows.append((f"Against {STATIC_PEAK}", _brief(chosen, static), None))
    hindsight = row(fleet_summary, STATIC_HINDSIGHT)
    if hindsight is not None:
        rows.append((f"Against {STATIC_HINDSIGHT}", _brief(chosen, hindsight), None))
    best = best_baseline(fleet_summary, target)
    if best is None:
        versus = f"none meets the {100 * target:g}% SLO attainment target."
    elif best["policy"] == STATIC_PEAK:
        versus = f"{STATIC_PEAK}: no other baseline meets the {100 * target:g}% SLO target."
    else:
        versus = f"{best['policy']}: {_brief(chosen, best)}"
    rows.append(("Against the best baseline at the SLO", versus, None))
    outcomes = {v.passed for v in judged}
    met = False if False in outcomes else (None if None in outcomes else True)
    rows.append(("Targets", _headline(judged), met))
    return rows


def _brief(chosen: dict, other: dict) -> str:
    """The saving against another policy in one sentence, with the CIs over days."""
    hours, theirs = chosen["gpu_hours"], other["gpu_hours"]
    verb = "saves" if hours <= theirs else "COSTS"
    return (
        f"{verb} {abs(theirs - hours):,.0f} GPU-hours ({abs(hours / theirs - 1):.1%}): "
        f"{hours:,.0f} {ci(chosen['gpu_hours_ci_low'], chosen['gpu_hours_ci_high'], 0)} "
        f"against {theirs:,.0f} {ci(other['gpu_hours_ci_low'], other['gpu_hours_ci_high'], 0)}; "
        f"GPU utilisation {_util(chosen)} against {_util(other)}."
    )


def _gate(curated: dict, summary: pl.DataFrame) -> GateVerdict:
    """The publication gate on these scores: the main job's check, computed again here so the
    report never shows a stale verdict (it cannot wait for the check: a failed blocking check
    would stop the report exactly when its verdict matters)."""
    return validate(summary, target=curated["slo_attainment_target"], policy=curated["policy"])


def _gate_line(gate: GateVerdict) -> str:
    exported = (
        "so the main job exports it: the policy spec and its manifests beside the store "
        "(docs/deploy.md)"
        if gate.passed
        else "so the main job exports nothing for it"
    )
    return (
        f"Publication gate {'passed' if gate.passed else 'FAILED'}: "
        f"{'; '.join(gate.reasons)}; {exported}."
    )


def _headline(judged: list[Verdict]) -> str:
    met = [v for v in judged if v.passed]
    missed = [v.name for v in judged if v.passed is False]
    unjudged = [v.name for v in judged if v.passed is None]
    line = f"{CHOSEN} meets {len(met)} of {len(judged)} targets"
    if missed:
        line += f"; MISS: {', '.join(missed)}"
    if unjudged:
        line += f"; not judged: {', '.join(unjudged)}"
    return line + "."


def _configuration(c: dict) -> list[str]:
    return [
        f"{CHOSEN} sizes prefill and decode together from one signal, {c['signal']}: "
        f"{c['decode_tps_per_instance']:,.1f} decode tok/s per instance (prefill and decode "
        f"instances counted), loaded to {c['utilisation_target']:.0%} of it, split at P/D "
        f"{c['pd_ratio']:.2f} (prefill instances per decode instance); pressure-tested "
        f"capacity within the SLO: {c['prefill_tps_at_slo']:,.0f} prompt tok/s per prefill "
        f"instance, {c['decode_tps_at_slo']:,.0f} decode tok/s per decode instance.",
        f"Stability: act outside +{c['scale_out_threshold']:.0%} / "
        f"-{c['scale_in_threshold']:.0%} of the running total; cool-downs "
        f"{c['scale_out_cooldown_s']:g} s out, {c['scale_in_cooldown_s']:g} s in; at most "
        f"+{c['scale_out_step']:.0%} / -{c['scale_in_step']:.0%} of the instances per action; "
        f"latency tiers: above {c['moderate']:g} x SLO add {c['moderate_step']:.0%}, above "
        f"{c['severe']:g} x SLO add {c['severe_step']:.0%}, no scale-in above "
        f"{c['scale_in_guard']:g} x SLO; removed instances stay warm {c['soft_scale_in_s']:g} s "
        "(soft scale-in).",
        f"SLO: TTFT p99 <= {c['ttft_p99_slo_s']:g} s and TBT p99 <= "
        f"{1000 * c['tbt_p99_slo_s']:g} ms in at least {100 * c['slo_attainment_target']:g}% "
        "of intervals.",
    ]


def _provenance(c: dict, candidates: pl.DataFrame, per_day: pl.DataFrame) -> str:
    curation_days = (c["evaluation_start"] - c["curation_start"]).total_seconds() / DAY_S
    objective = (
        "meeting the curation objective (fewest GPU-hours within half the SLO's error budget "
        "on every curation day)"
        if c["met_objective"]
        else "NOT meeting the curation objective: no candidate did, so the best worst-day SLO "
        "attainment was taken"
    )
    return (
        f"Curated (Algorithm 1) on {curation_days:g} day(s) from {c['curation_start']:%Y-%m-%d} "
        f"among {candidates.height} candidate configuration(s), {objective}; evaluated on "
        f"{per_day['day'].n_unique()} unseen day(s), {c['evaluation_start']:%Y-%m-%d %H:%M} to "
        f"{c['evaluation_end']:%Y-%m-%d %H:%M} UTC. Load: {c['source']}."
    )


def _savings(curated: dict, chosen: dict, summary: pl.DataFrame) -> list[str]:
    target = curated["slo_attainment_target"]
    static = row(summary, STATIC_PEAK)
    best = best_baseline(summary, target)
    lines = [] if static is None else [_against(STATIC_PEAK, chosen, static)]
    hindsight = row(summary, STATIC_HINDSIGHT)
    if hindsight is not None:
        label = (
            f"{STATIC_HINDSIGHT} (a fixed deployment sized, in hindsight, for the evaluation "
            "days' own peak: what a right-sized static deployment costs)"
        )
        lines.append(_against(label, chosen, hindsight))
    if best is None:
        lines.append(
            f"No baseline meets the {100 * target:g}% SLO attainment target: none to compare "
            "with at the SLO."
        )
    elif best["policy"] == STATIC_PEAK:
        lines.append(f"The best baseline that meets the SLO is {STATIC_PEAK} itself.")
    else:
        label = (
            f"the best baseline that meets the SLO, {best['policy']} (fewest GPU-hours at SLO "
            f"attainment >= {100 * target:g}%)"
        )
        lines.append(_against(label, chosen, best))
    return lines


def _against(label: str, chosen: dict, other: dict) -> str:
    """The chosen policy against another: GPU-hours with their CIs, utilisation, SLO."""
    hours, theirs = chosen["gpu_hours"], other["gpu_hours"]
    return (
        f"Against {label}: {hours:.1f} GPU-hours (95% CI over days "
        f"{ci(chosen['gpu_hours_ci_low'], chosen['gpu_hours_ci_high'])}) against {theirs:.1f} "
        f"({ci(other['gpu_hours_ci_low'], other['gpu_hours_ci_high'])}): "
        f"{hours - theirs:+.1f} GPU-hours ({hours / theirs - 1:+.1%}); GPU utilisation "
        f"{_util(chosen)} against {_util(other)} "
        f"({points(chosen['avg_gpu_util'] - other['avg_gpu_util'], 1)}); SLO attainment "
        f"{percent(chosen['slo_attainment'])} against {percent(other['slo_attainment'])}."
    )


def _util(scores: dict) -> str:
    """Average GPU utilisation with its 95% CI over days: ``52.5% [50.1% to 54.8%]``."""
    low, high = (percent(scores[f"avg_gpu_util_ci_{end}"], 1) for end in ("low", "high"))
    return f"{percent(scores['avg_gpu_util'], 1)} [{low} to {high}]"


def controller_line(decisions: pl.DataFrame) -> str:
    """What the chosen policy's controller did: count changes by direction of the total (a
    change that keeps the total only moves instances between the roles, the ratio's rounding),
    and the range of each pool."""
    change = (pl.col("next_prefill") + pl.col("next_decode")) - (
        pl.col("current_prefill") + pl.col("current_decode")
    )
    counts = decisions.select(
        out=(change > 0).sum(), into=(change < 0).sum(), even=(change == 0).sum()
    ).row(0, named=True)
    line = (
        f"Controller: {decisions.height} count changes over the evaluation days: "
        f"{counts['out']} scale-outs, {counts['into']} scale-ins, {counts['even']} rebalances"
    )
    for role in ("prefill", "decode"):
        both = pl.concat([decisions[f"current_{role}"], decisions[f"next_{role}"]])
        if both.len():
            line += f"; {role} {both.min()} to {both.max()} instances"
    return line + "."


def _slo_misses(curated: dict, summary: pl.DataFrame) -> list[str]:
    """Every baseline, and the oracle, below the SLO attainment target, worst first."""
    target = curated["slo_attainment_target"]
    policy = pl.col("policy")
    others = summary.filter((policy != CHOSEN) & ~policy.str.starts_with(ABLATION_PREFIX))
    missing = others.filter(pl.col("slo_attainment") < target).sort("slo_attainment", "policy")
    if missing.is_empty():
        return [f"Every baseline and the oracle meet the {100 * target:g}% target."]
    return [
        f"{r['policy']}: MISS by {points(target - r['slo_attainment'], signed=False)}: SLO "
        f"attainment {percent(r['slo_attainment'])} (TTFT {percent(r['ttft_attainment'])}, "
        f"TBT {percent(r['tbt_attainment'])}), {r['breaches']} breaches, at "
        f"{r['gpu_hours']:.1f} GPU-hours."
        for r in missing.iter_rows(named=True)
    ]


def ablation_lines(fleet_summary: pl.DataFrame) -> list[str]:
    """What each mechanism of the chosen policy is worth: a line per ablation in the backtest
    (none when it ran without ablations)."""
    chosen = row(fleet_summary, CHOSEN)
    return [
        _ablation_line(chosen, ablation)
        for ablation in ablations(fleet_summary).iter_rows(named=True)
    ]


def _ablation_line(chosen: dict, ablation: dict) -> str:
    """What the mechanism the ablation switches off is worth: the GPU-hours it saves and
    the SLO attainment it buys, each of which can be negative."""
    saved = ablation["gpu_hours"] - chosen["gpu_hours"]
    bought = chosen["slo_attainment"] - ablation["slo_attainment"]
    line = (
        f"{mechanism(ablation['policy'])}: {'saves' if saved >= 0 else 'costs'} "
        f"{abs(saved):.1f} GPU-hours ({abs(saved) / ablation['gpu_hours']:.1%}) and "
        f"{'buys' if bought >= 0 else 'loses'} {points(abs(bought), signed=False)} of SLO "
        f"attainment (without it: {ablation['gpu_hours']:.1f} GPU-hours, SLO attainment "
        f"{percent(ablation['slo_attainment'])}, GPU utilisation "
        f"{percent(ablation['avg_gpu_util'], 1)} against {percent(chosen['avg_gpu_util'], 1)}, "
        f"{ablation['flaps']} flaps against {chosen['flaps']})"
    )
    if saved <= 0 and bought <= 0:
        line += "; worth nothing in GPU-hours or SLO attainment on these days"
    return line + "."


def mode_lines(mode_agreement: pl.DataFrame) -> list[str]:
    """How far the fast-mode figures of the backtest can be trusted: per policy, request level
    minus fast mode on the same requests (:func:`policies.modes.compare_modes`)."""
    request = mode_agreement.filter(pl.col("mode") == "request").sort("policy")
    lead = (
        f"Request level minus fast mode on the same {request['requests'].max():,} requests of "
        "one evaluation-day span (GPU-hours relative, the rest absolute); the backtest's fleet "
        "figures are fast mode."
    )
    return [lead] + [
        f"{r['policy']}: GPU-hours {r['gpu_hours_gap']:+.1%}, GPU utilisation "
        f"{points(r['avg_gpu_util_gap'])}, TTFT attainment {points(r['ttft_attainment_gap'])}, "
        f"TBT attainment {points(r['tbt_attainment_gap'])}, scaling actions "
        f"{r['scaling_actions_gap']:+d}."
        for r in request.iter_rows(named=True)
    ]
