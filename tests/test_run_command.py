"""`heteroscale run --db` on a store of telemetry: the study, curation, the backtest on the
offered load the store recorded, the gate, placement and the report, simulating nothing; what
failed, named in the output; the options that pick a scenario; one line for what cannot run;
and never the path of a report this run did not write."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from heteroscale.cli import build_parser, main
from heteroscale.commands import run as run_command
from pipelines import run as pipelines_run
from pipelines.resources import REPORT_NAME
from scheduler import FLEET_TOPOLOGY_PATH
from simulator import DEFAULT_TRACE_PATH
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TelemetryStore
from tests.canonical_frames import instance_samples, service_load
from tests.simulated_store import azure_hour_store, ingested_azure_hour_store

CLI = Path(sys.executable).with_name("heteroscale")
H100_CLUSTER = """model: Llama-3.1-70B
prefill_pools: [{gpu_type: H100-SXM, tp: 4, count: 4}]
decode_pools: [{gpu_type: H20, tp: 4, count: 2}]
"""


@pytest.fixture(scope="module")
def store_run(tmp_path_factory):
    """`heteroscale run --db` on the Azure hour's telemetry as `heteroscale ingest` loads it."""
    folder = tmp_path_factory.mktemp("store")
    db = ingested_azure_hour_store(folder / "telemetry.duckdb")
    env = {**os.environ, "DAGSTER_HOME": str(folder / "dagster_home")}
    (folder / "dagster_home").mkdir()
    done = subprocess.run(
        [str(CLI), "run", "--db", str(db), "--log-level", "ERROR"],
        capture_output=True,
        text=True,
        env=env,
    )
    return db, done


@pytest.mark.slow
def test_the_backtest_runs_on_the_offered_load_the_store_recorded(store_run):
    db, done = store_run
    with duckdb.connect(str(db), read_only=True) as conn:
        source = conn.execute("SELECT source FROM curated_policy").fetchone()[0]
        samples = conn.execute("SELECT count(*) FROM instance_samples").fetchone()[0]
        first_bin = conn.execute(
            "SELECT offered_rps FROM fleet_timeline WHERE policy = 'heteroscale' ORDER BY ts"
        ).fetchone()[0]
        recorded = conn.execute(
            "SELECT avg(request_rate_rps) FROM (SELECT * FROM service_load ORDER BY ts "
            "OFFSET 117 LIMIT 40)"  # the evaluation half's first 10 minutes
        ).fetchone()[0]
    assert source.startswith(f"chat's recorded offered load in {db}")
    assert "lengths scaled to its mean prompt of 1,155 and output of 211 tokens" in source
    assert first_bin == pytest.approx(recorded)
    assert samples == 4230  # nothing simulated into the store
    assert "running the policy job on" in done.stderr


@pytest.mark.slow
def test_the_report_is_written_beside_the_store_and_a_failed_gate_is_named(store_run):
    db, done = store_run
    report = db.parent / REPORT_NAME
    assert report.is_file()
    assert f"HTML report:  {report}" in done.stdout
    # Half an hour of evaluation leaves a 600 s scale-in cool-down no room: HeteroScale spends
    # more than static peak there (docs/policy.md), and the gate says so, naming the service.
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "check policies/policy_spec policy_spec_passes_publication_gate failed: chat: "
        "heteroscale failed the publication gate" in done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr


@pytest.fixture(scope="module")
def two_services_run(tmp_path_factory):
    """`heteroscale run --db --workers 2` on a store holding the Azure hour as two services."""
    folder = tmp_path_factory.mktemp("two")
    db = ingested_azure_hour_store(folder / "telemetry.duckdb")
    store = TelemetryStore(db)
    for table in (INSTANCE_SAMPLES, SERVICE_LOAD):
        store.write(table, store.read(table).drop("day").with_columns(service=pl.lit("code")))
    env = {**os.environ, "DAGSTER_HOME": str(folder / "dagster_home")}
    (folder / "dagster_home").mkdir()
    done = subprocess.run(
        [str(CLI), "run", "--db", str(db), "--workers", "2", "--log-level", "ERROR"],
        capture_output=True,
        text=True,
        env=env,
    )
    return db, env, done


@pytest.mark.slow
def test_a_store_of_several_services_gets_a_run_and_a_report_per_service(two_services_run):
    db, env, done = two_services_run
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    assert "running the policy job on" in done.stderr and "(service chat, code)" in done.stderr
    assert "2 runs, one per service, in " in done.stdout
    for service in ("chat", "code"):
        report = db.parent / f"heteroscale-report-{service}.html"
        assert report.is_file()
        assert f"HTML report ({service}):  {report}" in done.stdout
        # Each service fails the gate on its half hour of evaluation, and says so on its own.
        assert f"{service}: FAILED (run " in done.stdout
        assert f"failed: {service}: heteroscale failed the publication gate" in done.stdout
    # Where a reader starts: each service's verdicts, linking its report.
    index = db.parent / REPORT_NAME
    assert f"HTML index of the services:  {index}" in done.stdout
    text = index.read_text()
    assert "<a href='heteroscale-report-chat.html'>chat</a>" in text
    assert "<a href='heteroscale-report-code.html'>code</a>" in text
    assert text.count("<th>Publication gate</th><td>FAILED") == 2
    with duckdb.connect(str(db), read_only=True) as conn:
        curated = conn.execute("SELECT service FROM curated_policy ORDER BY service").fetchall()
    assert curated == [("chat",), ("code",)]
    # Both runs are recorded where the Dagster UI reads.
    runs = subprocess.run(
        [str(CLI.with_name("dagster")), "run", "list", "--limit", "5"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert runs.stdout.count("policy_job") == 2, runs.stdout + runs.stderr


def refused(capsys, *options: str) -> str:
    assert main(["run", *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_dagster_home_that_is_no_folder_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    assert main(["run", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"heteroscale run: $DAGSTER_HOME {tmp_path / 'missing'} is not a folder: create it, or "
        "unset it"
    )
    assert "Traceback" not in err


def test_a_missing_store_is_refused_in_one_line(tmp_path, capsys):
    assert "no store at" in refused(capsys, "--db", str(tmp_path / "none.duckdb"))


def test_a_store_without_offered_load_is_refused_in_one_line(tmp_path, capsys):
    store = TelemetryStore(tmp_path / "samples.duckdb")
    store.write("instance_samples", instance_samples(role="decode", instances=1, intervals=4))
    err = refused(capsys, "--db", str(store.path))
    assert "holds no offered load (service_load)" in err


def test_a_store_too_short_to_split_is_refused_in_one_line(tmp_path, capsys):
    store = TelemetryStore(tmp_path / "short.duckdb")
    store.write("instance_samples", instance_samples(role="decode", instances=1, intervals=8))
    store.write("service_load", service_load([100.0] * 8))
    assert "too short to split" in refused(capsys, "--db", str(store.path))


def test_db_with_trace_is_refused(tmp_path, capsys):
    err = refused(capsys, "--db", str(tmp_path / "x.duckdb"), "--trace", str(DEFAULT_TRACE_PATH))
    assert "not both" in err


def test_a_topology_without_the_clusters_gpus_is_refused(tmp_path, capsys):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(H100_CLUSTER)
    err = refused(capsys, "--cluster", str(cluster))
    assert f"{FLEET_TOPOLOGY_PATH} has no H100-SXM nodes" in err


def test_trace_cluster_and_topology_pick_the_scenario(tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(H100_CLUSTER.replace("H100-SXM", "L20"))
    args = build_parser().parse_args(
        ["run", "--trace", str(DEFAULT_TRACE_PATH), "--format", "azure", "--cluster", str(cluster)]
        + ["--topology", str(FLEET_TOPOLOGY_PATH), "--service", "llama"]
    )
    (scenario,) = run_command._scenarios(args)
    assert (scenario.trace_path, scenario.trace_format) == (str(DEFAULT_TRACE_PATH), "azure")
    assert scenario.cluster_path == str(cluster) and scenario.service == "llama"
    assert scenario.topology_path == str(FLEET_TOPOLOGY_PATH)
    assert not scenario.fleet_from_store
    assert scenario.cluster().prefill_pools[0].count == 4


def test_a_report_from_an_earlier_run_is_never_printed(tmp_path, capsys, monkeypatch):
    db = azure_hour_store(tmp_path / "telemetry.duckdb")
    stale = tmp_path / REPORT_NAME
    stale.write_text("an earlier run's report")

    def stopped(db_path, scenario, *, log_level, workers):
        return pipelines_run.RunOutputs(
            False, Path(db_path), None, "run-id", ("step fleet_policy failed: why",)
        )

    monkeypatch.setattr(pipelines_run, "run_policy_job", stopped)
    assert main(["run", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "  step fleet_policy failed: why" in out
    assert "HTML report:  none written by this run" in out
    assert str(stale) not in out
