"""Figure builders (``fig = f(table)``), the report's computed text, and the HTML report.

Each builder takes the tables another package produced and returns a plotly figure;
``write_report`` writes the report as offline HTML pages: the decision (SLO and publication
verdicts, the signal, the configuration, the savings, a verdict per target) on the index, and
the signal study, the policy and its backtest, the placement, the telemetry's health and the
simulator's fidelity on pages of their own, linked from every page. ``write_services_index``
writes the index of a store's several services, each with its own report.
"""

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
from dashboards.page import page_path, service_report
from dashboards.pd_split_view import pd_split_figure
from dashboards.per_day_view import per_day_figure
from dashboards.placement_summary import placement_lines
from dashboards.placement_view import placement_figure
from dashboards.policy_view import policies_figure
from dashboards.report import PAGES, write_report
from dashboards.services_index import DECISION_TABLES, write_services_index
from dashboards.signal_fit_view import signal_fit_figure
from dashboards.signal_series_view import signal_series_figure
from dashboards.signal_statistics_view import signal_statistics_figure
from dashboards.signal_summary import score_lines, signal_brief, signal_lines
from dashboards.signal_view import signal_scores_figure
from dashboards.targets import Verdict, verdicts
from dashboards.telemetry_summary import telemetry_lines
from dashboards.telemetry_view import telemetry_figure
from dashboards.timeline_view import timeline_figure

__all__ = [
    "DECISION_TABLES",
    "PAGES",
    "Verdict",
    "ablation_lines",
    "controller_line",
    "decision_card",
    "decision_sections",
    "decisions_figure",
    "ingestion_lines",
    "mode_agreement_figure",
    "mode_lines",
    "page_path",
    "pd_split_figure",
    "per_day_figure",
    "placement_figure",
    "placement_lines",
    "policies_figure",
    "score_lines",
    "service_report",
    "signal_brief",
    "signal_fit_figure",
    "signal_lines",
    "signal_scores_figure",
    "signal_series_figure",
    "signal_statistics_figure",
    "telemetry_figure",
    "telemetry_lines",
    "timeline_figure",
    "verdicts",
    "write_report",
    "write_services_index",
]
