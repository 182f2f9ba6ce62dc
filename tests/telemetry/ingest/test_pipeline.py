"""Dagster wiring of ingestion: the asset loads, its check holds, the inbox sensor asks for runs."""

import dagster as dg

from pipelines.assets import ingest as ingest_assets
from pipelines.resources import StoreResource
from pipelines.sensors import inbox_sensor, ingest_job
from telemetry.ingest.exposition import write_openmetrics
from tests.telemetry.ingest.frames import source_frames


def test_the_ingest_asset_loads_and_its_accounting_check_passes(tmp_path):
    instances, load = source_frames()
    path = tmp_path / "scrape.om"
    path.write_text(write_openmetrics(instances, load))
    result = dg.materialize(
        [ingest_assets.ingest_log, ingest_assets.ingest_log_rows_accounted_for],
        resources={"store": StoreResource(db_path=str(tmp_path / "store.duckdb"))},
        run_config={"ops": {"telemetry__ingest_log": {"config": {"sources": [str(path)]}}}},
    )
    assert result.success
    materialized = result.asset_materializations_for_node("telemetry__ingest_log")[0]
    assert (
        materialized.metadata["rows_read"].value
        == materialized.metadata["rows_loaded"].value
        + materialized.metadata["rows_quarantined"].value
    )
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]


def test_the_inbox_sensor_requests_a_run_for_new_files_once(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("HETEROSCALE_INBOX", str(inbox))
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(inbox_sensor(context), dg.SkipReason)
    (inbox / "a.om").write_text("# EOF\n")
    request = inbox_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["telemetry__ingest_log"]["config"]["sources"] == [
        str(inbox / "a.om")
    ]
    later = dg.build_sensor_context(instance=instance, cursor=context.cursor)
    assert isinstance(inbox_sensor(later), dg.SkipReason)
    assert ingest_job.name == "ingest_job"
