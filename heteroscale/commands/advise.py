"""``heteroscale advise``: what the published policy would have done on recorded telemetry."""

import argparse
import json
import math
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from heteroscale.arguments import positive
from telemetry.store import DB_ENV_VAR, default_db_path


def register(commands: argparse._SubParsersAction) -> None:
    advise = commands.add_parser(
        "advise",
        help="replay recorded telemetry through the published policy, taking no action",
        description=(
            "Advisory (shadow) mode: replay a service's recorded telemetry (instance_samples, "
            "simulated or ingested) through the published policy, open loop, and report per "
            "interval and in total what it would have asked for against what the cluster ran, "
            "the GPU-hours difference, and the SLO breaches it had advised scaling out ahead "
            "of. Nothing is written to the store and nothing is scaled (docs/deploy.md)."
        ),
    )
    advise.add_argument(
        "--db", type=Path, help=f"DuckDB store (default ${DB_ENV_VAR}, else {default_db_path()})"
    )
    advise.add_argument(
        "--service",
        help="the telemetry's service (default: the spec's, else the store's only published one)",
    )
    advise.add_argument(
        "--since", type=_time, help="replay from this ISO 8601 time on (UTC unless it says)"
    )
    advise.add_argument(
        "--spec",
        type=Path,
        help="a spec YAML (`heteroscale export --format policy`) instead of the store's "
        "published one",
    )
    advise.add_argument(
        "--startup-s",
        type=positive,
        help="startup delay of a new instance, which sizes the early-warning lead (default: "
        "the one the backtest validated the policy under)",
    )
    advise.add_argument(
        "--per-interval-out",
        type=Path,
        help="write the per-interval rows to this CSV instead of into the output",
    )
    advise.add_argument("--json", action="store_true", help="print one JSON object")
    advise.set_defaults(handler=_advise)


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _advise(args: argparse.Namespace) -> int:
    report = advise_report(args)
    if not report["gate_passed"]:
        print(f"heteroscale advise: warning: {report['gate']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        _print_summary(report)
    return 0


def advise_report(args: argparse.Namespace) -> dict:
    """The replay of the store's telemetry as the JSON document.

    Raises
    ------
    ValueError
        No store, no published spec, no telemetry for the service (since ``--since``), or
        telemetry the policy cannot be replayed on; each saying what to run or pass.
    """
    import polars as pl

    from policies.advise import advise
    from policies.spec import published_spec
    from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
    from telemetry.store import TelemetryStore

    db = args.db or default_db_path()
    store = TelemetryStore(db)
    if not db.exists():
        raise ValueError(
            f"no store at {db}: run `heteroscale run`, or `heteroscale ingest SOURCE... --db "
            "PATH` for your own telemetry, first"
        )
    spec = _spec_file(args.spec) if args.spec else published_spec(store, args.service)
    service = args.service or spec.service
    counts = store.row_counts()
    samples = (
        store.read(INSTANCE_SAMPLES, {"service": service}) if counts.get(INSTANCE_SAMPLES) else None
    )
    if samples is None or samples.is_empty():
        raise ValueError(
            f"no telemetry for service {service!r} in {db}: ingest it with `heteroscale "
            "ingest SOURCE... --db PATH`, or name the telemetry's service with --service"
        )
    load_rows = store.read(SERVICE_LOAD, {"service": service}) if counts.get(SERVICE_LOAD) else None
    if args.since:
        samples = samples.filter(pl.col("ts") >= args.since)
        if samples.is_empty():
            raise ValueError(f"no telemetry for service {service!r} since {args.since}")
    options = {} if args.startup_s is None else {"startup_s": args.startup_s}
    per_interval, summary = advise(samples, load_rows, spec, **options)
    report = {
        **{k: v for k, v in asdict(summary).items() if k != "per_role"},
        "policy": spec.policy,
        "per_role": [asdict(r) for r in summary.per_role],
        "first_interval": per_interval["ts"].min().isoformat(),
        "last_interval": per_interval["ts"].max().isoformat(),
    }
    if args.per_interval_out:
        per_interval.write_csv(args.per_interval_out)
        report["per_interval_file"] = str(args.per_interval_out)
    else:
        report["per_interval"] = [
            {k: _plain(v) for k, v in row.items()} for row in per_interval.iter_rows(named=True)
        ]
    return report


def _spec_file(path: Path):
    """The spec in a YAML file, or a ValueError that names the file."""
    import yaml

    from heteroscale.cli import one_line
    from policies.spec import load

    try:
        return load(path.read_text())
    except (ValueError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: {one_line(error)}") from error


def _plain(value):
    """JSON-safe: times in ISO 8601, NaN as null."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_summary(report: dict) -> None:
    print(
        f"{report['service']}: {report['intervals']} intervals of {report['interval_s']:g} s, "
        f"{report['first_interval']} to {report['last_interval']}, replayed through "
        f"{report['policy']} (publication gate {'passed' if report['gate_passed'] else 'FAILED'})"
    )
    if report["missing_intervals"]:
        print(f"  {report['missing_intervals']} intervals had no samples and were skipped")
    print(f"{'':<8} {'GPU-h run':>12} {'GPU-h advised':>14} {'difference':>11}  advised more/fewer")
    for row in report["per_role"]:
        print(
            f"{row['role']:<8} {row['gpu_hours_actual']:>12,.1f} {row['gpu_hours_advised']:>14,.1f}"
            f" {row['gpu_hours_difference']:>+11,.1f}  {row['intervals_advised_more']} / "
            f"{row['intervals_advised_fewer']} intervals"
        )
    print(
        f"{'total':<8} {report['gpu_hours_actual']:>12,.1f} {report['gpu_hours_advised']:>14,.1f}"
        f" {report['gpu_hours_difference']:>+11,.1f}"
    )
    print(
        f"SLO breaches: {report['breach_intervals']} intervals in {report['breaches']} episodes; "
        f"the policy had advised more instances within {report['lead_intervals']} intervals "
        f"({report['startup_s']:g} s startup) before {report['early_warnings']} of them"
    )
    if "per_interval_file" in report:
        print(f"per interval: {report['per_interval_file']}")
    print("advisory only: nothing was scaled or written to the store")
