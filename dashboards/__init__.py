"""Figure builders (``fig = f(table)``), the report's computed text, and the HTML report.

Each builder takes the tables another package produced and returns a plotly figure;
``write_report`` puts the decision (chosen policy, savings, verdicts per target) first, then
the telemetry it rests on, with all figures, on one offline HTML page.
"""

from dashboards.decision_summary import decision_sections
from dashboards.decision_view import decisions_figure
from dashboards.pd_split_view import pd_split_figure
from dashboards.per_day_view import per_day_figure
from dashboards.placement_view import placement_figure
from dashboards.policy_view import policies_figure
from dashboards.report import write_report
from dashboards.signal_fit_view import signal_fit_figure
from dashboards.signal_series_view import signal_series_figure
from dashboards.signal_statistics_view import signal_statistics_figure
from dashboards.signal_view import signal_scores_figure
from dashboards.targets import Verdict, verdicts
from dashboards.telemetry_summary import telemetry_lines
from dashboards.telemetry_view import telemetry_figure
from dashboards.timeline_view import timeline_figure

__all__ = [
    "Verdict",
    "decision_sections",
    "decisions_figure",
    "pd_split_figure",
    "per_day_figure",
    "placement_figure",
    "policies_figure",
    "signal_fit_figure",
    "signal_scores_figure",
    "signal_series_figure",
    "signal_statistics_figure",
    "telemetry_figure",
    "telemetry_lines",
    "timeline_figure",
    "verdicts",
    "write_report",
]
