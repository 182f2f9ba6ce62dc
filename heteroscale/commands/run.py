"""``heteroscale run``: materialise the main job on the embedded default."""

import argparse
import sys
import time
from pathlib import Path

from telemetry.store import DB_ENV_VAR, TelemetryStore, default_db_path


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="materialise the main job on the embedded default (trace -> dashboard)",
        description=(
            "Simulate a real ServeGen day on the embedded P/D cluster and study its candidate "
            "autoscaling signals; curate the coordinated policy and backtest it with every "
            "baseline on 14 real days; place its decisions; write the DuckDB store and an HTML "
            "report."
        ),
    )
    run.add_argument(
        "--out",
        type=Path,
        help=f"output directory (default: the store at ${DB_ENV_VAR}, else ./out)",
    )
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (default INFO: one line per step)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from pipelines.run import DB_NAME, run_main_job  # dagster is slow to import: only here

    db_path = args.out / DB_NAME if args.out else default_db_path()
    print(f"heteroscale: running the main job, writing to {db_path}", file=sys.stderr)
    started = time.perf_counter()
    outputs = run_main_job(db_path, log_level=args.log_level)
    elapsed_s = time.perf_counter() - started
    verdict = "succeeded" if outputs.success else "FAILED"
    print(f"{verdict} in {elapsed_s:.1f} s (run {outputs.run_id})")
    print(f"DuckDB store: {outputs.db_path}")
    for table, rows in TelemetryStore(outputs.db_path).row_counts().items():
        print(f"  {table:<24} {rows:>9,} rows")
    if outputs.report_path.exists():
        print(f"HTML report:  {outputs.report_path}")
    return 0 if outputs.success else 1
