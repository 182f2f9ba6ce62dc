"""Where the CLI records its runs: in DAGSTER_HOME when set, else in the repository's instance,
whose relative storage paths resolve against the repository whatever the working directory."""

import shutil
from pathlib import Path

from pipelines import run

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
