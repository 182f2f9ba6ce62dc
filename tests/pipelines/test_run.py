"""Where the CLI records its runs: in DAGSTER_HOME when set, else in the repository's instance,
whose relative storage paths resolve against the repository whatever the working directory; and
what a run tells it: the report only when this run wrote it, and every failed step and check."""

import shutil
from pathlib import Path

import dagster as dg

from pipelines import run
from pipelines.resources import REPORT_NAME, ScenarioResource
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
        "step fleet_policy failed: ClusterFileError: none.yaml: cannot read a "
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
