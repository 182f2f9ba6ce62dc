"""Where the CLI records its runs: in DAGSTER_HOME when set, else in the repository's instance,
whose relative storage paths resolve against the repository whatever the working directory; and
what a run tells it: the report only when this run wrote it, and every failed step and check;
and with workers, the same results from steps in processes of their own."""

import itertools
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from pipelines import run
from pipelines.resources import REPORT_NAME, ScenarioResource
from telemetry.store import TelemetryStore
from tests.simulated_store import azure_hour_store

ROOT = Path(__file__).resolve().parents[2]


def test_without_dagster_home_runs_go_to_the_repositorys_instance(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dagster.yaml", project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(run, "PROJECT_ROOT", project)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(elsewhere)
    with run.ui_instance() as instance:
        assert instance.is_persistent
    assert (project / ".dagster_home" / "storage").is_dir()
    assert not any(elsewhere.iterdir())


def test_dagster_home_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with run.ui_instance() as instance:
        assert instance.root_directory == str(tmp_path)


def test_a_run_that_stops_before_the_report_names_none_and_says_why(tmp_path, monkeypatch):
    """A report beside the store from an earlier run is not this run's."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    db = azure_hour_store(tmp_path / "telemetry.duckdb")
    (tmp_path / REPORT_NAME).write_text("an earlier run's report")
    broken = ScenarioResource(service="chat", fleet_from_store=True, cluster_path="none.yaml")
    outputs = run.run_policy_job(db, broken, log_level="ERROR")
    assert not outputs.success and outputs.report_path is None
    assert outputs.failures == (
        "step policies__curation.pressure_tests failed: ClusterFileError: none.yaml: cannot read a "
        "cluster: [Errno 2] No such file or directory: 'none.yaml'",
    )


def test_failures_name_failed_steps_and_checks_once():
    @dg.asset
    def broken():
        raise ValueError("what went wrong")

    @dg.asset
    def fine():
        return 1

    @dg.asset_check(asset=fine, blocking=True)
    def holds():
        return dg.AssetCheckResult(passed=False, description="svc/instance-3 after 12:00")

    @dg.asset_check(asset=fine)
    def warns():
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description="a shortfall"
        )

    result = dg.materialize([broken, fine, holds, warns], raise_on_error=False)
    assert set(run.failures(result)) == {
        "step broken failed: ValueError: what went wrong",
        "check fine holds failed: svc/instance-3 after 12:00",
        "check fine warns warns: a shortfall",
    }


@pytest.mark.slow
def test_workers_spread_the_curation_sweep_over_processes_with_the_same_result(
    tmp_path, monkeypatch
):
    """The policy job on the Azure hour's telemetry, in this process and over two workers:
    the sweep's steps run in processes other than this one, and every table is the same."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    scenario = ScenarioResource(service="chat", fleet_from_store=True)
    tables = {}
    for workers in (1, 2):
        db = azure_hour_store(tmp_path / f"workers-{workers}" / "telemetry.duckdb")
        outputs = run.run_policy_job(db, scenario, log_level="ERROR", workers=workers)
        # The Azure half-hour saves nothing against static peak: the gate fails, nothing else.
        assert len(outputs.failures) == 1 and "publication gate" in outputs.failures[0]
        store = TelemetryStore(db)
        tables[workers] = {
            name: store.read(name)
            for name in ("curation_candidates", "curated_policy", "fleet_summary")
        }
    for name, frame in tables[1].items():
        # The source names its store: the one thing that differs.
        assert frame.drop("source", strict=False).equals(
            tables[2][name].drop("source", strict=False)
        ), name
    with dg.DagsterInstance.get() as instance:
        last = instance.get_runs(limit=1)[0].run_id
        starts = instance.all_logs(last, of_type=dg.DagsterEventType.STEP_START)
        ends = instance.all_logs(
            last, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
        )
    spans = {event.step_key: [event.timestamp] for event in starts}
    for event in ends:
        spans[event.step_key].append(event.timestamp)
    pids = {event.step_key: event.dagster_event.pid for event in starts}
    sweep = sorted(step for step in spans if "simulate_candidates" in step)
    assert len(sweep) == 6 and os.getpid() not in {pids[step] for step in sweep}
    # The store's steps one at a time; the sweep's beside them or each other.
    store_steps = sorted(
        (spans[step] for step in spans if step not in sweep),
        key=lambda span: span[0],
    )
    assert len(store_steps) > 10
    for before, after in itertools.pairwise(store_steps):
        assert before[1] <= after[0]
    others = [span for step, span in spans.items() if step not in sweep]
    overlapping = [
        step
        for step in sweep
        for other in [*others, *(spans[s] for s in sweep if s != step)]
        if spans[step][0] < other[1] and other[0] < spans[step][1]
    ]
    assert overlapping
