"""The report asset reads every table it needs from the store, for its service only, and the
tables survive the round trip through DuckDB (timestamps, booleans, nulls of the gap columns)."""

import dagster as dg
import polars as pl

from pipelines.assets.dashboards import TABLES, report_html
from pipelines.resources import ScenarioResource, StoreResource
from telemetry.store import TableWrite, TelemetryStore
from tests.dashboards.test_report import FIGURES


def test_the_report_asset_writes_the_page_from_the_stored_tables(tables, tmp_path):
    db = tmp_path / "heteroscale.duckdb"
    writes = [TableWrite(table, tables[keyword], ("service",)) for keyword, table in TABLES.items()]
    # Another service's backtest in the same store must not reach this service's page.
    other = tables["fleet_summary"].with_columns(service=pl.lit("other"))
    TelemetryStore(db).write_many([*writes, TableWrite("fleet_summary", other, ("service",))])
    result = dg.materialize(
        [report_html],
        resources={
            "scenario": ScenarioResource(service="svc"),
            "store": StoreResource(db_path=str(db)),
        },
    )
    assert result.success
    page = (tmp_path / "heteroscale-report.html").read_text(encoding="utf-8")
    assert "heteroscale meets " in page
    assert page.count('class="plotly-graph-div"') == FIGURES
