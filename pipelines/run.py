"""Materialise a job for the CLI and the end-to-end tests, recording the run in the instance
the Dagster UI reads: the main job on a simulated scenario, or the policy job on the telemetry a
store holds. In this process by default (the imports are paid once); with ``workers`` > 1 on
the jobs' multiprocess executor, whose steps run in processes of their own, so the curation
sweep spreads over ``workers`` cores (:mod:`pipelines.executors`). A store of several services
gets one policy run per service, ``workers`` of them at once in processes of their own
(:func:`run_policy_jobs`)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipelines.assets.dashboards import REPORT_KEY
from pipelines.definitions import build_definitions
from pipelines.executors import multiprocess
from pipelines.resources import SIMULATOR, ScenarioResource, StoreResource, TelemetrySourceResource
from policies.parallel import spread

DB_NAME = "heteroscale.duckdb"
#: The repository root, whose dagster.yaml ``dg dev`` reads when started there.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunOutputs:
    """Where a run left its results, whether every step and blocking check passed, and what
    did not.

    ``report_path`` is None when this run wrote no report: one beside the store is then an
    earlier run's. ``failures`` names each failed step and each failed check, in words.
    """

    success: bool
    db_path: Path
    report_path: Path | None
    run_id: str
    failures: tuple[str, ...] = ()


def ui_instance() -> dg.DagsterInstance:
    """The instance ``dg dev`` shows: ``$DAGSTER_HOME`` when set, else the repository's
    dagster.yaml, whose storage (``.dagster_home/``) is relative to the repository root, so it
    is opened from there whatever the caller's working directory. Installed without the
    repository, runs are recorded in an ephemeral instance."""
    if home := os.environ.get("DAGSTER_HOME"):
        if not Path(home).is_dir():
            raise ValueError(f"$DAGSTER_HOME {home} is not a folder: create it, or unset it")
        return dg.DagsterInstance.get()
    if not (PROJECT_ROOT / "dagster.yaml").is_file():
        return dg.DagsterInstance.ephemeral()
    with contextlib.chdir(PROJECT_ROOT):
        return dg.DagsterInstance.from_config(str(PROJECT_ROOT))


def run_main_job(
    db_path: Path,
    scenario: ScenarioResource | None = None,
    *,
    log_level: str = "INFO",
    workers: int = 1,
) -> RunOutputs:
    """Run ``heteroscale_job`` on ``scenario`` (default: the embedded one), simulating its
    telemetry into ``db_path`` with a report beside it, for the day the scenario's trace
    starts on."""
    scenario = scenario or ScenarioResource()
    day = scenario.trace_day().isoformat()
    return _execute("heteroscale_job", db_path, scenario, log_level, workers, day)


def run_policy_job(
    db_path: Path, scenario: ScenarioResource, *, log_level: str = "INFO", workers: int = 1
) -> RunOutputs:
    """Run ``policy_job`` (study, curation, backtest, gate, placement, report) on the telemetry
    ``db_path`` holds, simulating nothing."""
    return _execute("policy_job", db_path, scenario, log_level, workers)


def run_policy_jobs(
    db_path: Path,
    scenarios: list[ScenarioResource],
    *,
    log_level: str = "INFO",
    workers: int = 1,
) -> list[RunOutputs]:
    """``policy_job`` for each service of ``scenarios``, each run recorded on its own, up to
    ``workers`` at once in processes of their own (:func:`policies.parallel.spread`), each
    writing its service's report (:meth:`StoreResource.report_path`).

    The runs share the store, whose calls take turns on the file
    (:class:`telemetry.store.TelemetryStore`); their own steps run in their process.
    """
    jobs = [(str(db_path), scenario.model_dump(), log_level) for scenario in scenarios]
    if workers > 1 and len(jobs) > 1:
        # Opened here first: workers creating a new instance's databases at once would each
        # stamp its schema version (two migration heads, an instance no one can open).
        with ui_instance():
            pass
    return spread(_policy_run, jobs, workers=workers)


def _policy_run(job: tuple[str, dict, str]) -> RunOutputs:
    """One service's policy run, in this process (what a worker of :func:`run_policy_jobs`
    runs: the store's path, the scenario's fields and the log level)."""
    db_path, scenario, log_level = job
    return run_policy_job(Path(db_path), ScenarioResource(**scenario), log_level=log_level)


def render_report(db_path: Path, scenario: ScenarioResource, out: Path | None = None) -> RunOutputs:
    """Run the policy job's report asset alone on the tables ``db_path`` holds (recorded where
    the Dagster UI reads), writing the index to ``out`` (default: beside the store)."""
    store = StoreResource(
        db_path=str(Path(db_path).resolve()), report_file=str(out.resolve()) if out else ""
    )
    defs = build_definitions(store, scenario)
    with ui_instance() as instance:
        result = defs.resolve_job_def("policy_job").execute_in_process(
            instance=instance,
            asset_selection=[REPORT_KEY],
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    return _outputs(result, store)


def bound_job(job: str, db_path: str, scenario: dict, workers: int) -> dg.JobDefinition:
    """``job`` bound to the store at ``db_path``, the scenario's fields and the simulator as
    the telemetry source, its steps over ``workers`` processes: what a step's process rebuilds
    (:func:`dg.build_reconstructable_job` needs plain arguments)."""
    store = StoreResource(db_path=db_path)
    source = TelemetrySourceResource(sources=SIMULATOR)
    defs = build_definitions(
        store, ScenarioResource(**scenario), source, executor=multiprocess(workers)
    )
    return defs.resolve_job_def(job)


def _execute(
    job: str,
    db_path: Path,
    scenario: ScenarioResource,
    log_level: str,
    workers: int,
    partition_key: str | None = None,
) -> RunOutputs:
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    store = StoreResource(db_path=str(Path(db_path).resolve()))
    loggers = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    with ui_instance() as instance:
        if workers == 1:
            result = bound_job(job, store.db_path, scenario.model_dump(), 1).execute_in_process(
                instance=instance,
                partition_key=partition_key,
                raise_on_error=False,
                run_config=loggers,
            )
            return _outputs(result, store)
        reconstructable = dg.build_reconstructable_job(
            __name__,
            bound_job.__name__,
            reconstructable_args=(job, store.db_path, scenario.model_dump(), workers),
        )
        with dg.execute_job(
            reconstructable,
            instance,
            run_config=loggers,
            tags={"dagster/partition": partition_key} if partition_key else None,
        ) as result:
            return _outputs(result, store)


#: What a run in this process or on an executor returns; both answer the same questions.
JobResult = dg.ExecuteInProcessResult | dg.JobExecutionResult


def _outputs(result: JobResult, store: StoreResource) -> RunOutputs:
    written = result.asset_materializations_for_node(REPORT_KEY.to_python_identifier())
    return RunOutputs(
        result.success,
        Path(store.db_path),
        Path(written[-1].metadata["path"].value) if written else None,
        result.run_id,
        failures(result),
    )


def failures(result: JobResult) -> tuple[str, ...]:
    """Each failed step with its error, then each failed check with what it found (a
    blocking check's description names the service, instance and interval at fault)."""
    steps = [
        f"step {event.step_key} failed: {_cause(event.step_failure_data.error)}"
        for event in result.get_step_failure_events()
        # A blocking check's failure fails its step too; the check says why, below.
        if event.step_failure_data.error.cls_name != "DagsterAssetCheckFailedError"
    ]
    checks = [
        f"check {check.asset_key.to_user_string()} {check.check_name} "
        f"{'warns' if check.severity == dg.AssetCheckSeverity.WARN else 'failed'}: "
        f"{check.description or 'no description'}"
        for check in result.get_asset_check_evaluations()
        if not check.passed
    ]
    return tuple(steps + checks)


def _cause(error) -> str:
    """The error the step's code raised, without Dagster's wrapping: a ``dg.Failure``'s
    description, else the exception's class and message."""
    while error.cause and error.cls_name.startswith("Dagster"):
        error = error.cause
    text = error.message.strip().split(": ", 1)[-1]
    return text if error.cls_name == "Failure" else f"{error.cls_name}: {text}"
