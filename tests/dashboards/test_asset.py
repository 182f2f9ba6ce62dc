"""The report asset reads every table it needs from the store, for its service only, and the
tables survive the round trip through DuckDB (timestamps, booleans, nulls of the gap columns);
ingestion's tables are read where the store has them."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dashboards import PAGES, page_path
from pipelines.assets.dashboards import TABLES, report_html
from pipelines.resources import ScenarioResource, StoreResource
from telemetry.ingest import INGEST_LOG
from telemetry.store import TableWrite, TelemetryStore
from tests.dashboards.test_report import FIGURES


def materialise(db) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [report_html],
        resources={
            "scenario": ScenarioResource(service="svc"),
            "store": StoreResource(db_path=str(db)),
        },
    )


def test_the_report_asset_writes_every_page_from_the_stored_tables(tables, tmp_path):
    db = tmp_path / "heteroscale.duckdb"
    writes = [TableWrite(table, tables[keyword], ("service",)) for keyword, table in TABLES.items()]
    # Another service's backtest in the same store must not reach this service's pages.
    other = tables["fleet_summary"].with_columns(service=pl.lit("other"))
    TelemetryStore(db).write_many([*writes, TableWrite("fleet_summary", other, ("service",))])
    assert materialise(db).success
    index = tmp_path / "heteroscale-report.html"
    for slug in PAGES:
        page = page_path(index, slug).read_text(encoding="utf-8")
        assert page.count('class="plotly-graph-div"') == FIGURES[slug], slug
    overview = index.read_text(encoding="utf-8")
    assert "heteroscale meets " in overview
    telemetry = page_path(index, "telemetry").read_text(encoding="utf-8")
    assert "No telemetry was ingested into this store" in telemetry

    log = pl.DataFrame(
        {
            "load_id": ["a"],
            "sources": ["scrape.prom"],
            "loaded_at": [datetime(2025, 3, 1, tzinfo=UTC)],
            "rows_read": [10],
            "rows_loaded": [10],
            "rows_skipped": [0],
            "rows_quarantined": [0],
            "partitions": [1],
            "notes": ["{}"],
        }
    )
    TelemetryStore(db).write(INGEST_LOG, log, ("load_id",))
    assert materialise(db).success
    telemetry = page_path(index, "telemetry").read_text(encoding="utf-8")
    assert "Load a at 2025-03-01 00:00 UTC from scrape.prom: 10 rows read" in telemetry
