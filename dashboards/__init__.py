"""Figure builders (``fig = f(table)``) and the self-contained HTML report.

Each builder takes the table another package produced and returns a plotly figure;
``write_report`` puts a computed summary and all figures on one offline HTML page.
"""

from dashboards.decision_view import decisions_figure
from dashboards.placement_view import placement_figure
from dashboards.report import summary_lines, write_report
from dashboards.signal_view import signal_scores_figure
from dashboards.telemetry_view import telemetry_figure

__all__ = [
    "decisions_figure",
    "placement_figure",
    "signal_scores_figure",
    "summary_lines",
    "telemetry_figure",
    "write_report",
]
