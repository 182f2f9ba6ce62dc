"""One self-contained HTML page: the decision first, then the telemetry it rests on.

The decision opens with the signal the study recommends, its reasons and the study's figures
(every candidate's statistics, the shown candidates against load, the top signals over time).
Then what a reader acts on: the chosen policy and its configuration, what it saves, a verdict
per target with its figure, the peers that miss the SLO, the ablations and how far fast mode
agrees with request level (:mod:`dashboards.decision_summary`), then the figures of the fleet
backtest. The telemetry, signal and placement findings follow.

The page embeds plotly.js once (``include_plotlyjs=True`` on the first figure of the page), so
it opens offline; the CDN variant renders blank without a network.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from dashboards.decision_summary import decision_sections
from dashboards.decision_view import decisions_figure
from dashboards.pd_split_view import pd_split_figure
from dashboards.per_day_view import per_day_figure
from dashboards.placement_view import placement_figure
from dashboards.policy_groups import CHOSEN, ORACLE, STATIC_PEAK, best_baseline
from dashboards.policy_view import policies_figure
from dashboards.signal_fit_view import signal_fit_figure
from dashboards.signal_series_view import signal_series_figure
from dashboards.signal_statistics_view import signal_statistics_figure
from dashboards.signal_summary import signal_lines
from dashboards.signal_view import signal_scores_figure
from dashboards.telemetry_summary import telemetry_lines
from dashboards.telemetry_view import telemetry_figure
from dashboards.timeline_view import timeline_figure

TITLE = "HeteroScale report"
FIGURE_HEIGHT = "560px"
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}.miss{color:#b00000;font-weight:bold}"
)


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
    curated_policy: pl.DataFrame,
    curation_candidates: pl.DataFrame,
    pressure_sweep: pl.DataFrame,
    fleet_summary: pl.DataFrame,
    fleet_per_day: pl.DataFrame,
    fleet_timeline: pl.DataFrame,
    mode_agreement: pl.DataFrame,
    signal_series: pl.DataFrame | None = None,
) -> Path:
    """Write the report page and return its path.

    Parameters
    ----------
    path : str or os.PathLike
        Where the HTML goes; parent folders are created.
    instance_samples, service_load : pl.DataFrame
        The canonical telemetry tables.
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.
    signal_study, signal_recommendation : pl.DataFrame
        :func:`signals.run_study`'s ranked candidates and its recommendation.
    decisions : pl.DataFrame
        ``scaling_decisions``: the chosen policy's count changes over the evaluation days
        (:data:`policies.loop.ROLE_TARGETS_SCHEMA`).
    placement : pl.DataFrame
        A placement plan with ``action``, ``s2``, ``gpu_type`` and ``instances``.
    curated_policy, curation_candidates, pressure_sweep : pl.DataFrame
        What curation chose, among which candidates, and its P/D split sweep.
    fleet_summary, fleet_per_day, fleet_timeline : pl.DataFrame
        Every policy's scores over the evaluation days, per day, and per time bin.
    mode_agreement : pl.DataFrame
        Fast mode against request level per policy.
    signal_series : pl.DataFrame, optional
        The study's paired series (per interval and role, each signal and the offered loads,
        at the study's window), for the scatter against load and the time series; without it
        the Signal section shows the statistics alone.

    Every table may carry a ``service`` column (the store adds one); the backtest's tables must
    then hold one service, since the decision is a service's.

    Returns
    -------
    Path
        ``path``. The page is written to a sibling temporary file and renamed into place, so a
        reader never sees half a page.

    Raises
    ------
    ValueError
        If the backtest's tables mix services.
    """
    _one_service(
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
    sections = decision_sections(
        curated_policy=curated_policy,
        curation_candidates=curation_candidates,
        fleet_summary=fleet_summary,
        fleet_per_day=fleet_per_day,
        mode_agreement=mode_agreement,
    )
    decision_figures = [
        policies_figure(fleet_summary, curated_policy),
        timeline_figure(fleet_timeline, _timeline_policies(fleet_summary, target)),
        per_day_figure(fleet_per_day, slo_attainment_target=target),
        pd_split_figure(pressure_sweep, curated_policy),
        decisions_figure(decisions),
    ]
    telemetry = telemetry_lines(
        instance_samples=instance_samples,
        signal_scores=signal_scores,
        decisions=decisions,
        placement=placement,
    )
    telemetry_figures = [
        telemetry_figure(instance_samples, service_load),
        signal_scores_figure(signal_scores),
        placement_figure(placement),
    ]
    signal_figures = [signal_statistics_figure(signal_study)]
    if signal_series is not None:
        signal_figures += [
            signal_fit_figure(signal_series, signal_study),
            signal_series_figure(signal_series, signal_study),
        ]
    signal_text = signal_lines(signal_study, signal_recommendation, curated_policy)
    signal = f"<h3>Signal</h3>\n{_list(signal_text)}"
    decision = "\n".join(
        f"<h3>{html.escape(title)}</h3>\n{_list(lines)}" for title, lines in sections.items()
    )
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{TITLE}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{TITLE}</h1>\n"
        f"<h2>Decision</h2>\n{signal}\n{decision}\n"
        f"{_figures(decision_figures, with_plotlyjs=True)}\n"
        f"<h2>The signal study</h2>\n{_figures(signal_figures, with_plotlyjs=False)}\n"
        f"<h2>Telemetry, signals and placement</h2>\n{_list(telemetry)}\n"
        f"{_figures(telemetry_figures, with_plotlyjs=False)}\n</body>\n</html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


def _one_service(*tables: pl.DataFrame) -> None:
    """Refuse tables of several services: the page states one service's decision, and a read
    without the service filter would otherwise blend backtests without a trace."""
    services = {
        service
        for table in tables
        if "service" in table.columns
        for service in table["service"].unique()
    }
    if len(services) > 1:
        raise ValueError(f"the backtest's tables mix services {sorted(services)}: pass one")


def _timeline_policies(summary: pl.DataFrame, target: float) -> list[str]:
    """The chosen policy, the oracle, static_peak and the best baseline at the SLO (when it
    is another), those the backtest ran."""
    best = best_baseline(summary, target)
    wanted = [CHOSEN, ORACLE, STATIC_PEAK, *([best["policy"]] if best else [])]
    ran = set(summary["policy"])
    return [policy for policy in dict.fromkeys(wanted) if policy in ran]


def _list(lines: list[str]) -> str:
    """An HTML list; a line that reports a miss is set in bold red so it cannot be skimmed."""
    items = "\n".join(
        f"<li{' class=miss' if 'MISS' in line else ''}>{html.escape(line)}</li>" for line in lines
    )
    return f"<ul>\n{items}\n</ul>"


def _figures(figures: list[go.Figure], *, with_plotlyjs: bool) -> str:
    """The figures' HTML; the bundle goes with the first one if ``with_plotlyjs``."""
    return "\n".join(
        figure.to_html(
            full_html=False,
            include_plotlyjs=with_plotlyjs and index == 0,
            default_height=FIGURE_HEIGHT,
        )
        for index, figure in enumerate(figures)
    )
