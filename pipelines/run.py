"""Materialise the main job in this process, for the CLI and the end-to-end tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.resources import ScenarioResource, StoreResource

DB_NAME = "heteroscale.duckdb"


@dataclass(frozen=True)
class RunOutputs:
    """Where a run left its results, and whether every step and blocking check passed."""

    success: bool
    db_path: Path
    report_path: Path
    run_id: str


def run_main_job(db_path: Path, *, log_level: str = "INFO") -> RunOutputs:
    """Run ``heteroscale_job`` writing to ``db_path`` and a report beside it.

    The run is recorded in the persistent instance when ``DAGSTER_HOME`` is set (so it shows
    in ``dg dev``), else in an ephemeral one.
    """
    store = StoreResource(db_path=str(Path(db_path).resolve()))
    defs = build_definitions(store, ScenarioResource())
    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    result = defs.resolve_job_def("heteroscale_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    return RunOutputs(result.success, Path(store.db_path), store.report_path(), result.run_id)
