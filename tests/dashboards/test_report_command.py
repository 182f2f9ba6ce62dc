"""`heteroscale report` renders the report again from a store's tables through the report
asset, printing the index's path once every page is written; names what a store lacks, and a
failed asset in one line. Here, beside the asset's test, for the fixture's tables (a real small
backtest)."""

import polars as pl
import pytest

from dashboards import PAGES, page_path
from heteroscale.cli import main
from pipelines.assets.dashboards import TABLES
from telemetry.store import TableWrite, TelemetryStore
from tests.dashboards.test_report import FIGURES


@pytest.fixture
def store(tables, tmp_path, monkeypatch):
    """Every table the report reads, for service ``svc``, and another service's summary; the
    run is recorded in a throwaway Dagster instance."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    db = tmp_path / "store" / "heteroscale.duckdb"
    writes = [TableWrite(table, tables[keyword], ("service",)) for keyword, table in TABLES.items()]
    other = tables["fleet_summary"].with_columns(service=pl.lit("other"))
    TelemetryStore(db).write_many([*writes, TableWrite("fleet_summary", other, ("service",))])
    return db


def test_the_report_is_written_where_asked_and_its_path_printed(store, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "report.html"
    assert main(["report", "--db", str(store), "--service", "svc", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}\n"
    for slug in PAGES:
        page = page_path(out, slug).read_text(encoding="utf-8")
        assert page.count('class="plotly-graph-div"') == FIGURES[slug], slug


def test_by_default_the_report_goes_beside_the_store(store, capsys):
    assert main(["report", "--db", str(store), "--service", "svc"]) == 0
    index = store.parent / "heteroscale-report.html"
    assert capsys.readouterr().out == f"{index}\n" and index.is_file()


def test_a_store_of_several_services_needs_one_named(store, capsys):
    assert main(["report", "--db", str(store)]) == 2
    assert "name one service with --service" in capsys.readouterr().err


def test_what_the_store_lacks_is_named_and_nothing_is_written(store, tmp_path, capsys):
    """The telemetry alone, as `heteroscale ingest` leaves a store: the report names every
    table it needs and what writes them."""
    telemetry = TelemetryStore(store).read("instance_samples")
    bare = TelemetryStore(tmp_path / "bare.duckdb")
    bare.write("instance_samples", telemetry.drop("day"))
    assert main(["report", "--db", str(bare.path), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "has no service_load, signal_scores," in err and "`heteroscale run`" in err
    assert not (tmp_path / "r.html").exists()


def test_a_report_asset_that_fails_is_one_line_naming_its_step(store, tmp_path, capsys):
    """The asset fails (its folder cannot be made): no traceback, no path printed, exit 1."""
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "report.html"
    assert main(["report", "--db", str(store), "--service", "svc", "--out", str(out)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("heteroscale report: step dashboards__report_html failed: ")
    assert f"FileExistsError: [Errno 17] File exists: '{tmp_path / 'a-file'}'" in err
