"""The report in a real headless Chromium: every figure is drawn and no script fails."""

import pytest

from dashboards import signal_fit_figure, signal_series_figure, write_report
from tests.dashboards.browser import drawn_figures, drawn_pieces, open_page, plotted_traces
from tests.dashboards.test_report import FIGURES

pytestmark = pytest.mark.slow


def test_every_figure_is_drawn_without_script_errors(tables, tmp_path):
    page = write_report(tmp_path / "report.html", **tables)
    run = open_page(page, tmp_path)
    assert run.errors == []
    assert not [line for line in run.console if "Uncaught" in line]
    figures = page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert figures == FIGURES
    assert drawn_figures(run.dom) == figures
    assert run.dom.count('class="main-svg"') >= figures  # SVG layers were laid out
    pieces = drawn_pieces(run.dom)
    assert all(plotted_traces(piece) for piece in pieces)  # every figure drew its data
    # The signal study's figures follow the decision's five: the heatmap's image, then every
    # trace of the scatter grid and of the time series.
    heatmap, fit, series = pieces[5:8]
    assert plotted_traces(heatmap) == 1 and "<image" in heatmap
    study, paired = tables["signal_study"], tables["signal_series"]
    assert plotted_traces(fit) == len(signal_fit_figure(paired, study).data)
    assert plotted_traces(series) == len(signal_series_figure(paired, study).data)


def test_a_failing_script_is_caught(tmp_path):
    """The probe can fail: a page whose script throws and logs an error is reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head></head><body><script>"
        "console.error('drawing failed'); undefinedFunction();"
        "</script></body></html>"
    )
    run = open_page(page, tmp_path)
    assert run.errors[0] == "drawing failed"
    assert "undefinedFunction" in run.errors[1]
    assert any("Uncaught ReferenceError" in line for line in run.console)
    assert drawn_figures(run.dom) == 0
