"""Dagster wiring of ingestion: the asset loads, its check holds, each day it wrote shows as a
materialised telemetry partition, a code location that simulates its telemetry keeps what it
ingests in a store of its own, and the inbox sensor asks for runs."""

import dagster as dg

from pipelines.assets import ingest as ingest_assets
from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.resources import InboxResource, StoreResource, TelemetrySourceResource
from pipelines.sensors import inbox_sensor, ingest_job
from telemetry.ingest.exposition import write_openmetrics
from telemetry.store import TelemetryStore
from tests.telemetry.ingest.frames import source_frames


def ingest_scrape(tmp_path, sources: str) -> dg.ExecuteInProcessResult:
    """Ingest 36 h (two days) of scrapes into ``store.duckdb``'s code location."""
    instances, load = source_frames(intervals=12, interval_s=3 * 3600.0)
    path = tmp_path / "scrape.om"
    path.write_text(write_openmetrics(instances, load))
    return dg.materialize(
        [ingest_assets.ingest_log, ingest_assets.ingest_log_rows_accounted_for],
        resources={
            "store": StoreResource(db_path=str(tmp_path / "store.duckdb")),
            "source": TelemetrySourceResource(sources=sources),
        },
        run_config={
            "ops": {
                "telemetry__ingest_log": {
                    "config": {"sources": [str(path)], "interval_s": 3 * 3600.0}
                }
            }
        },
    )


def test_the_ingest_asset_loads_reports_its_days_and_its_accounting_check_passes(tmp_path):
    result = ingest_scrape(tmp_path, "prometheus+http://prometheus.example:9090")
    db = tmp_path / "store.duckdb"
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    logged = result.asset_materializations_for_node("telemetry__ingest_log")
    log = next(m for m in logged if m.asset_key == ingest_assets.INGEST_LOG_KEY).metadata
    assert log["dagster/row_count"].value == 1  # one load in the log
    reported = {
        (m.asset_key.path[-1], m.partition): m.metadata["dagster/row_count"].value
        for m in logged
        if m.asset_key in (INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY)
    }
    store = TelemetryStore(db)
    stored = {
        (table, day.isoformat()): rows
        for table in ("instance_samples", "service_load")
        for day, rows in store.read(table).group_by("day").len().rows()
    }
    assert reported == stored
    assert {day for _, day in reported} == {"2025-03-01", "2025-03-02"}


def test_a_simulating_code_location_ingests_beside_its_store_and_reports_no_partition(tmp_path):
    result = ingest_scrape(tmp_path, "simulator")
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    assert not (tmp_path / "store.duckdb").exists()
    ingested = TelemetryStore(tmp_path / "ingested" / "store.duckdb")
    assert ingested.row_counts()["instance_samples"] > 0
    (logged,) = result.asset_materializations_for_node("telemetry__ingest_log")
    assert logged.asset_key == ingest_assets.INGEST_LOG_KEY
    assert logged.metadata["store"].value == str(ingested.path)


def test_the_inbox_sensor_requests_a_run_for_new_files_once(tmp_path):
    inbox = tmp_path / "inbox"
    resources = {"inbox": InboxResource(path=str(inbox))}
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance, resources=resources)
    assert isinstance(inbox_sensor(context), dg.SkipReason)
    inbox.mkdir()
    (inbox / "a.om").write_text("# EOF\n")
    request = inbox_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["telemetry__ingest_log"]["config"]["sources"] == [
        str(inbox / "a.om")
    ]
    later = dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=resources)
    assert isinstance(inbox_sensor(later), dg.SkipReason)
    assert ingest_job.name == "ingest_job"
