"""The report in a real headless Chromium: on every page every figure is drawn and no script
fails; a screenshot is the page's first screen."""

import struct

import pytest

from dashboards import PAGES, page_path, signal_fit_figure, signal_series_figure, write_report
from tests.dashboards.browser import (
    SCREEN,
    drawn_figures,
    drawn_pieces,
    open_page,
    plotted_traces,
    screenshot,
)
from tests.dashboards.test_report import FIGURES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(tables, tmp_path_factory):
    return write_report(tmp_path_factory.mktemp("report") / "report.html", **tables)


@pytest.mark.parametrize("slug", PAGES)
def test_every_figure_of_every_page_is_drawn_without_script_errors(index, slug, tmp_path):
    page = page_path(index, slug)
    run = open_page(page, tmp_path)
    assert run.errors == []
    assert not [line for line in run.console if "Uncaught" in line]
    assert page.read_text(encoding="utf-8").count('class="plotly-graph-div"') == FIGURES[slug]
    assert drawn_figures(run.dom) == FIGURES[slug]
    assert run.dom.count('class="main-svg"') >= FIGURES[slug]  # SVG layers were laid out
    assert all(plotted_traces(piece) for piece in drawn_pieces(run.dom))  # each drew its data


def test_the_signal_studys_figures_draw_every_trace(index, tables, tmp_path):
    """The heatmap's image, then every trace of the scatter grid and of the time series."""
    run = open_page(page_path(index, "signals"), tmp_path)
    heatmap, fit, series, _ = drawn_pieces(run.dom)
    assert plotted_traces(heatmap) == 1 and "<image" in heatmap
    study, paired = tables["signal_study"], tables["signal_series"]
    assert plotted_traces(fit) == len(signal_fit_figure(paired, study).data)
    assert plotted_traces(series) == len(signal_series_figure(paired, study).data)


def test_a_screenshot_is_the_first_screen(index, tmp_path):
    png = screenshot(index, tmp_path / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == SCREEN  # the IHDR chunk's width and height


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
