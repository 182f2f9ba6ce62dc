"""The index of a store's several services: each service's deciding rows, computed as its own
report's first screen computes them, and a link to that report; a service whose policy run has
not finished says so. Drawn in a real headless Chromium with no script errors."""

import html

import polars as pl

from dashboards import DECISION_TABLES, decision_card, service_report, write_services_index
from dashboards.services_index import SHOWN
from tests.dashboards.browser import open_page
from tests.dashboards.conftest import SERVICE


def test_each_service_has_its_deciding_rows_and_a_link_to_its_report(tables, tmp_path):
    other = {name: tables[name].with_columns(service=pl.lit("other")) for name in DECISION_TABLES}
    both = {name: pl.concat([tables[name], other[name]]) for name in DECISION_TABLES}
    index = tmp_path / "heteroscale-report.html"
    written = write_services_index(index, [SERVICE, "other", "pending"], both)
    assert written == index
    text = index.read_text()
    assert "HeteroScale report for services <b>svc</b>, <b>other</b>, <b>pending</b>." in text
    for service in (SERVICE, "other", "pending"):
        assert f"<a href='{service_report(index, service).name}'>{service}</a>" in text
    expected = decision_card(**{name: tables[name] for name in DECISION_TABLES})
    shown = [(label, body) for label, body, _ in expected if label in SHOWN]
    assert [label for label, _ in shown] == list(SHOWN)
    for label, body in shown:  # the same sentences, once per service with a finished run
        assert text.count(f"<th>{html.escape(label)}</th><td>{html.escape(body)}</td>") == 2
    assert text.count("No policy run has finished for this service yet.") == 1


def test_the_index_opens_in_a_browser_without_errors(tables, tmp_path):
    index = write_services_index(
        tmp_path / "heteroscale-report.html",
        [SERVICE, "pending"],
        {name: tables[name] for name in DECISION_TABLES},
    )
    run = open_page(index, tmp_path)
    assert run.errors == []
    assert "<h1>Services</h1>" in run.dom
