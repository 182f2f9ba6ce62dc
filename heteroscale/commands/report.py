"""``heteroscale report``: render the HTML report again from the tables a store holds."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from heteroscale.arguments import positive
from telemetry.store import DB_ENV_VAR, default_db_path

if TYPE_CHECKING:  # dagster is slow to import: the command imports it only when it runs
    from pipelines.run import RunOutputs


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="render the HTML report again from a store",
        description=(
            "Write the report's pages (the decision first, then the signal study, the policy "
            "and its backtest, the placement, telemetry and ingestion health, the simulator's "
            "fidelity) from the tables a store already holds, through the report asset the "
            "main and policy jobs run, and print the index's path once every page is written. "
            "A store that lacks a table the report needs is named with what is missing."
        ),
    )
    report.add_argument(
        "--db", type=Path, help=f"DuckDB store (default ${DB_ENV_VAR}, else {default_db_path()})"
    )
    report.add_argument(
        "--out",
        type=Path,
        help="the index page to write; the other pages go beside it (default: beside the "
        "store, heteroscale-report.html, or in a store of several services "
        "heteroscale-report-<service>.html and the index of the services)",
    )
    report.add_argument("--service", help="the service to report (default: the store's only one)")
    report.add_argument(
        "--window",
        type=positive,
        help="window of the signal study's figures, s (default: the main job's)",
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    outputs = write(args.db or default_db_path(), args.out, args.service, args.window)
    if outputs.report_path is None:
        for failure in outputs.failures:
            print(f"heteroscale report: {failure}", file=sys.stderr)
        return 1
    print(outputs.report_path)
    return 0


def write(db: Path, out: Path | None, service: str | None, window_s: float | None) -> "RunOutputs":
    """Run the policy job's report asset alone on ``db`` (recorded where the Dagster UI
    reads), writing the index to ``out``; the run's :class:`~pipelines.run.RunOutputs`
    (its report path None, and its failures in words, when the asset failed).

    Raises
    ------
    ValueError
        When there is no store at ``db``, or it lacks a table the report reads for the
        service, naming every one and what writes them.
    """
    # dagster is slow to import: only here, and only through pipelines.
    from pipelines.resources import ScenarioResource
    from pipelines.run import render_report

    scenario = {"service": _service(db, service)}
    if window_s is not None:
        scenario["signal_window_s"] = window_s
    return render_report(db, ScenarioResource(**scenario), out)


def _service(db: Path, named: str | None) -> str:
    """The service the report is about, once the store is known to hold every table the
    report reads for it."""
    from pipelines.assets.dashboards import TABLES
    from telemetry.store import TelemetryStore, one_service

    if not db.is_file():
        raise ValueError(f"no store at {db}: run `heteroscale run` first")
    store = TelemetryStore(db)
    services = {}
    for table in TABLES.values():
        rows = store.distinct(table, ["service"])
        services[table] = set() if rows is None else set(rows["service"])
    held = [service for there in services.values() for service in there]
    if not held:
        raise ValueError(f"{db} holds none of the report's tables: {_TO_WRITE}")
    service = one_service(held, named)
    missing = [table for table, there in services.items() if service not in there]
    if missing:
        raise ValueError(f"{db} has no {', '.join(missing)} for service {service!r}: {_TO_WRITE}")
    return service


#: What writes the report's tables.
_TO_WRITE = (
    "the report needs the telemetry, the signal study, the curated policy with its backtest, "
    "and the placement; `heteroscale run` writes them (with --db, on telemetry you ingested)"
)
