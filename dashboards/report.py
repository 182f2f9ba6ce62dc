"""The report: the decision on the index page, the evidence behind it on pages of their own.

The index (the path ``heteroscale run`` prints) is the overview a capacity planner acts on: the
SLO verdict and the publication gate's, the signal the study recommends and why, the chosen
policy's configuration, what it saves with its uncertainty, a verdict per target, and the peers
that miss the SLO. The other pages hold what a reviewer checks it against: the signal study,
the policy and its backtest, the placement, the telemetry's health and the simulator's
fidelity. Each page is a self-contained file (:mod:`dashboards.page`) that opens offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from dashboards.decision_summary import (
    ablation_lines,
    controller_line,
    decision_card,
    decision_sections,
    mode_lines,
)
from dashboards.decision_view import decisions_figure
from dashboards.ingestion_summary import ingestion_lines
from dashboards.mode_view import mode_agreement_figure
from dashboards.page import (
    Block,
    Page,
    bullets,
    card,
    glossary,
    heading,
    paragraph,
    write_pages,
)
from dashboards.pd_split_view import pd_split_figure
from dashboards.per_day_view import per_day_figure
from dashboards.placement_summary import GLOSSARY, placement_lines
from dashboards.placement_view import placement_figure
from dashboards.policy_groups import CHOSEN, ORACLE, STATIC_PEAK, best_baseline
from dashboards.policy_view import policies_figure
from dashboards.signal_fit_view import signal_fit_figure
from dashboards.signal_series_view import signal_series_figure
from dashboards.signal_statistics_view import signal_statistics_figure
from dashboards.signal_summary import score_lines, signal_lines
from dashboards.signal_view import signal_scores_figure
from dashboards.telemetry_summary import telemetry_lines
from dashboards.telemetry_view import telemetry_figure
from dashboards.timeline_view import timeline_figure

#: The pages in navigation order: slug and title. The first is the index.
PAGES = {
    "overview": "Overview: the decision",
    "signals": "Signal study",
    "policy": "Policy and backtest",
    "placement": "Placement",
    "telemetry": "Telemetry and ingestion health",
    "fidelity": "Simulator fidelity",
}


def write_report(
    path: str | os.PathLike[str],
    *,
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    signal_scores: pl.DataFrame,
    signal_study: pl.DataFrame,
    signal_recommendation: pl.DataFrame,
    decisions: pl.DataFrame,
    placement: pl.DataFrame,
    placement_outcomes: pl.DataFrame,
    curated_policy: pl.DataFrame,
    curation_candidates: pl.DataFrame,
    pressure_sweep: pl.DataFrame,
    fleet_summary: pl.DataFrame,
    fleet_per_day: pl.DataFrame,
    fleet_timeline: pl.DataFrame,
    mode_agreement: pl.DataFrame,
    signal_series: pl.DataFrame | None = None,
    ingest_log: pl.DataFrame | None = None,
    quarantine: pl.DataFrame | None = None,
    service_load_origin: pl.DataFrame | None = None,
) -> Path:
    """Write the report's pages and return the index's path.

    Parameters
    ----------
    path : str or os.PathLike
        Where the index (the overview) goes; every other page is a sibling named
        ``<stem>-<slug>.html`` (:data:`PAGES`, :func:`dashboards.page.page_path`); parent
        folders are created.
    instance_samples, service_load : pl.DataFrame
        The canonical telemetry tables.
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.
    signal_study, signal_recommendation : pl.DataFrame
        :func:`signals.run_study`'s ranked candidates and its recommendation.
    decisions : pl.DataFrame
        ``scaling_decisions``: the chosen policy's count changes over the evaluation days
        (:data:`policies.loop.ROLE_TARGETS_SCHEMA`).
    placement, placement_outcomes : pl.DataFrame
        Those decisions placed: the plan and, per cycle, what was asked and placed
        (``scheduler.plan_to_frame``, ``scheduler.outcomes_to_frame``).
    curated_policy, curation_candidates, pressure_sweep : pl.DataFrame
        What curation chose, among which candidates, and its P/D split sweep.
    fleet_summary, fleet_per_day, fleet_timeline : pl.DataFrame
        Every policy's scores over the evaluation days, per day, and per time bin.
    mode_agreement : pl.DataFrame
        Fast mode against request level per policy.
    signal_series : pl.DataFrame, optional
        The study's paired series (per interval and role, each signal and the offered loads,
        at the study's window), for the scatter against load and the time series; without it
        the signal study shows the statistics alone.
    ingest_log, quarantine, service_load_origin : pl.DataFrame, optional
        Ingestion's tables (:mod:`telemetry.ingest`), where the store has them; without a log
        the telemetry page says the telemetry was simulated.

    Every table but ingestion's may carry a ``service`` column (the store adds one); together
    they must hold one service, since the decision is a service's.

    Returns
    -------
    Path
        ``path``. Every page is written to a temporary sibling first and renamed into place
        once all are written, the index last (:func:`dashboards.page.write_pages`).

    Raises
    ------
    ValueError
        If the tables mix services.
    """
    service = _one_service(
        instance_samples,
        service_load,
        decisions,
        curated_policy,
        curation_candidates,
        pressure_sweep,
        fleet_summary,
        fleet_per_day,
        fleet_timeline,
        mode_agreement,
    )
    target = curated_policy["slo_attainment_target"].item()
    recommendation = signal_lines(signal_study, signal_recommendation, curated_policy)
    overview: list[Block] = [
        card(
            decision_card(
                curated_policy=curated_policy,
                signal_study=signal_study,
                signal_recommendation=signal_recommendation,
                fleet_summary=fleet_summary,
                fleet_per_day=fleet_per_day,
            )
        ),
        heading("Signal"),
        bullets(recommendation),
    ]
    for title, lines in decision_sections(
        curated_policy=curated_policy,
        curation_candidates=curation_candidates,
        fleet_summary=fleet_summary,
        fleet_per_day=fleet_per_day,
    ).items():
        overview += [heading(title), bullets(lines)]

    signals: list[Block] = [bullets(recommendation + score_lines(signal_scores))]
    signals.append(signal_statistics_figure(signal_study))
    if signal_series is not None:
        signals += [
            signal_fit_figure(signal_series, signal_study),
            signal_series_figure(signal_series, signal_study),
        ]
    signals.append(signal_scores_figure(signal_scores))

    policy: list[Block] = [bullets([controller_line(decisions)])]
    if ablations := ablation_lines(fleet_summary):
        policy += [heading("Ablations: what each mechanism is worth"), bullets(ablations)]
    policy += [
        policies_figure(fleet_summary, curated_policy),
        timeline_figure(
            fleet_timeline, curated_policy, shown=_timeline_policies(fleet_summary, target)
        ),
        per_day_figure(fleet_per_day, slo_attainment_target=target),
        pd_split_figure(pressure_sweep, curated_policy),
        decisions_figure(decisions),
    ]

    placed: list[Block] = [
        paragraph(
            "The policy decides how many prefill and decode instances the service runs; the "
            "scheduler decides where, on the fleet's network topology. The terms:"
        ),
        glossary(GLOSSARY),
        heading("Where the chosen policy's instances went"),
        bullets(placement_lines(placement, placement_outcomes, decisions, _gpus(curated_policy))),
        placement_figure(placement),
    ]

    health: list[Block] = [
        heading("Ingestion"),
        bullets(
            ingestion_lines(
                service=service,
                ingest_log=ingest_log,
                quarantine=quarantine,
                service_load_origin=service_load_origin,
            )
        ),
        heading("Telemetry in the store"),
        bullets(telemetry_lines(instance_samples, service_load)),
        telemetry_figure(instance_samples, service_load),
    ]

    fidelity: list[Block] = [
        heading("Fast mode against request level, in this run"),
        bullets(mode_lines(mode_agreement)),
        mode_agreement_figure(mode_agreement),
        heading("The simulator against measured vLLM runs"),
        paragraph(
            "docs/simulator.md (section Fidelity) replays the measured vLLM benchmark runs "
            "shipped in data/vllm_bench through the simulator, with the same requests, arrival "
            "times, GPU, model, parallelism and engine settings, and compares measured with "
            "simulated TTFT p50 and p99, TPOT p50, peak decode tokens/s and the longest "
            "waiting queue. Those figures are in that document, not in this store; "
            "`heteroscale fidelity --json` measures them again. What the simulator does not "
            "model is listed there too (sections Not modelled yet, Not modelled in "
            "colocated mode)."
        ),
    ]

    blocks = {
        "overview": overview,
        "signals": signals,
        "policy": policy,
        "placement": placed,
        "telemetry": health,
        "fidelity": fidelity,
    }
    path = Path(path)
    write_pages(path, [service], [Page(slug, title, blocks[slug]) for slug, title in PAGES.items()])
    return path


def _one_service(*tables: pl.DataFrame) -> str:
    """The one service the tables hold. Tables of several are refused: the pages state one
    service's decision, and a read without the service filter would otherwise blend
    backtests without a trace."""
    services = {
        service
        for table in tables
        if "service" in table.columns
        for service in table["service"].unique()
    }
    if len(services) != 1:
        raise ValueError(
            f"the report needs the tables of one service, got {sorted(services) or 'none'}"
        )
    return services.pop()


def _gpus(curated_policy: pl.DataFrame) -> dict[str, int]:
    """GPUs of one instance per role, as curated."""
    row = curated_policy.row(0, named=True)
    return {role: row[f"{role}_gpus_per_instance"] for role in ("prefill", "decode")}


def _timeline_policies(summary: pl.DataFrame, target: float) -> list[str]:
    """The chosen policy, the oracle, static_peak and the best baseline at the SLO (when it
    is another), those the backtest ran."""
    best = best_baseline(summary, target)
    wanted = [CHOSEN, ORACLE, STATIC_PEAK, *([best["policy"]] if best else [])]
    ran = set(summary["policy"])
    return [policy for policy in dict.fromkeys(wanted) if policy in ran]
