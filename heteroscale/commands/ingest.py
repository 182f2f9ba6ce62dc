"""``heteroscale ingest``: load telemetry files, directories or a Prometheus into the store."""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from heteroscale.arguments import positive
from telemetry.store import DB_ENV_VAR, TelemetryStore, default_db_path


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or +00:00")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="load telemetry (exposition files, CSV/Parquet, Prometheus) into the store",
        description=(
            "Read each SOURCE (a file, a directory, or prometheus+http://host:port), turn it "
            "into the canonical telemetry tables, skip the metrics it reads no signal from, "
            "quarantine rows that are bad, and replace the service x day partitions it covers. "
            "See docs/ingest.md."
        ),
    )
    parser.add_argument("sources", nargs="+", metavar="SOURCE")
    parser.add_argument(
        "--service",
        help="service of every row (default: the mapping's, else the series' service, "
        "model_name or model label)",
    )
    parser.add_argument("--mapping", type=Path, help="mapping file (YAML, docs/ingest.md)")
    parser.add_argument(
        "--db",
        type=Path,
        help=f"DuckDB store (default ${DB_ENV_VAR}, else {default_db_path(ingested=True)}: "
        "apart from the simulation's)",
    )
    parser.add_argument("--interval", type=positive, help="canonical interval in s (default 15)")
    parser.add_argument("--start", type=_instant, help="Prometheus range start (ISO, with zone)")
    parser.add_argument("--end", type=_instant, help="Prometheus range end (default now)")
    parser.add_argument("--timeout", type=positive, default=30.0, help="Prometheus timeout in s")
    parser.add_argument(
        "--by-day",
        action="store_true",
        help="load large Parquet exports one UTC day per transaction (bounded memory)",
    )
    parser.add_argument("--json", action="store_true", help="print the load report as JSON")
    parser.set_defaults(handler=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    # Imported here, not with the CLI: it costs every other command 0.15 s (pyarrow.parquet).
    from telemetry.ingest import IngestError, LoadReport, ingest, ingest_by_day, load_mapping

    store = TelemetryStore(args.db or default_db_path(ingested=True))
    try:
        options = {
            "mapping": load_mapping(args.mapping),
            "service": args.service,
            "interval_s": args.interval,
            "start": args.start,
            "end": args.end,
            "timeout_s": args.timeout,
        }
        if args.by_day:
            report = LoadReport.combine(ingest_by_day(args.sources, store, **options))
        else:
            report = ingest(args.sources, store, **options)
    except IngestError as exc:
        from heteroscale.cli import one_line

        print(f"heteroscale ingest: {one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_json(), default=str))
    else:
        print(
            f"read {report.rows_read:,} rows: loaded {report.rows_loaded:,}, skipped "
            f"{report.rows_skipped:,}, quarantined {report.rows_quarantined:,} into {store.path}"
        )
        for reason, rows in report.skipped.items():
            print(f"  skipped     {rows:>9,}  {reason}")
        for reason, rows in report.quarantine_reasons.items():
            print(f"  quarantined {rows:>9,}  {reason}")
        for part in report.partitions:
            print(f"  {part['table']:<17} {part['service']} {part['day']}: {part['rows']:,} rows")
        for service, note in report.notes.get("service_load", {}).items():
            print(f"  offered load of {service}: {note}")
    return 0
