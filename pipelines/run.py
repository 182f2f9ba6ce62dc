"""Materialise the main job in this process, for the CLI and the end-to-end tests, recording
the run in the instance the Dagster UI reads."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.resources import SIMULATOR, ScenarioResource, StoreResource, TelemetrySourceResource

DB_NAME = "heteroscale.duckdb"
#: The repository root, whose dagster.yaml ``dg dev`` reads when started there.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunOutputs:
    """Where a run left its results, and whether every step and blocking check passed."""

    success: bool
    db_path: Path
    report_path: Path
    run_id: str


def ui_instance() -> dg.DagsterInstance:
    """The instance ``dg dev`` shows: ``$DAGSTER_HOME`` when set, else the repository's
    dagster.yaml, whose storage (``.dagster_home/``) is relative to the repository root, so it
    is opened from there whatever the caller's working directory. Installed without the
    repository, runs are recorded in an ephemeral instance."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if not (PROJECT_ROOT / "dagster.yaml").is_file():
        return dg.DagsterInstance.ephemeral()
    with contextlib.chdir(PROJECT_ROOT):
        return dg.DagsterInstance.from_config(str(PROJECT_ROOT))


def run_main_job(db_path: Path, *, log_level: str = "INFO") -> RunOutputs:
    """Run ``heteroscale_job`` on the embedded default, writing to ``db_path`` and a report
    beside it, for the telemetry day the scenario's trace covers."""
    store = StoreResource(db_path=str(Path(db_path).resolve()))
    scenario = ScenarioResource()
    defs = build_definitions(store, scenario, TelemetrySourceResource(sources=SIMULATOR))
    with ui_instance() as instance:
        result = defs.resolve_job_def("heteroscale_job").execute_in_process(
            instance=instance,
            partition_key=scenario.trace_day().isoformat(),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    return RunOutputs(result.success, Path(store.db_path), store.report_path(), result.run_id)
