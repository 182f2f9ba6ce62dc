"""The shipped PostgreSQL instance (deploy/postgres/dagster.yaml) against a real server: a run
of the code location records its run, events and partition materialisations in PostgreSQL,
where a second instance (as another webserver or daemon would) reads them back."""

import shutil
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY
from pipelines.definitions import defs
from tests.pipelines.postgres_server import running_postgres
from tests.telemetry.ingest.frames import START, source_frames

ROOT = Path(__file__).resolve().parents[2]
DAY = START.date().isoformat()


@pytest.fixture
def postgres_home(tmp_path, monkeypatch):
    """A DAGSTER_HOME holding the shipped Postgres instance, its database created and its
    connection in the environment, and the code location's settings beside it."""
    with running_postgres() as server:
        conn = psycopg2.connect(
            host=server.host, port=server.port, user=server.user, dbname="postgres"
        )
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        conn.cursor().execute("CREATE DATABASE dagster")
        conn.close()
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "deploy" / "postgres" / "dagster.yaml", home)
        for name, value in {
            "DAGSTER_PG_HOST": server.host,
            "DAGSTER_PG_PORT": str(server.port),
            "DAGSTER_PG_USERNAME": server.user,
            "DAGSTER_PG_PASSWORD": "unused",  # the throwaway cluster trusts loopback
            "DAGSTER_PG_DB": "dagster",
        }.items():
            monkeypatch.setenv(name, value)
        export = tmp_path / "export.parquet"
        source_frames(intervals=24, interval_s=3600.0, start=START)[0].write_parquet(export)
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text("interval_s: 3600\n")
        for name, value in {
            "HETEROSCALE_DB": str(tmp_path / "heteroscale.duckdb"),
            "HETEROSCALE_SOURCES": str(export),
            "HETEROSCALE_MAPPING": str(mapping),
            "HETEROSCALE_INBOX": str(tmp_path / "inbox"),
        }.items():
            monkeypatch.setenv(name, value)
        yield home, server


def test_runs_and_materialisations_are_recorded_in_postgres(postgres_home):
    home, server = postgres_home
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        result = defs.resolve_job_def("telemetry_job").execute_in_process(
            instance=instance, partition_key=DAY
        )
        assert result.success
    # A second instance on the same database sees what the first one recorded.
    with dg.DagsterInstance.from_config(str(home)) as other:
        run = other.get_run_by_id(result.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == DAY
        (record,) = other.fetch_materializations(INSTANCE_SAMPLES_KEY, limit=5).records
        assert record.partition_key == DAY
        metadata = record.asset_materialization.metadata
        assert metadata["dagster/row_count"] == dg.IntMetadataValue(3 * 24)
    with psycopg2.connect(
        host=server.host, port=server.port, user=server.user, dbname="dagster"
    ) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
    conn.close()
