"""``heteroscale study``: which signal should drive autoscaling, from the telemetry in a store."""

import argparse
import json
import math
from pathlib import Path

from heteroscale.arguments import positive
from telemetry.store import DB_ENV_VAR, default_db_path

#: Statistics the readable table shows, in order.
_COLUMNS = (
    ("pearson", "r", "{:.2f}"),
    ("r_squared_low", "R² low", "{:.2f}"),
    ("dynamic_range", "range", "{:.2f}"),
    ("snr", "SNR", "{:.1f}"),
)


def register(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser(
        "study",
        help="rank the candidate autoscaling signals of the telemetry in a store",
        description=(
            "Every candidate signal of every role (and GPU type) against the role's offered "
            "load: correlation, linearity and its knee, dynamic range, noise, lead/lag, "
            "SLO-breach prediction, with block-bootstrap intervals; each classed proportional, "
            "negative_feedback or unusable, ranked, and the primary signal recommended with "
            "its per-instance target (docs/signals.md)."
        ),
    )
    study.add_argument(
        "--db", type=Path, help=f"DuckDB store (default ${DB_ENV_VAR}, else {default_db_path()})"
    )
    study.add_argument("--service", help="the service to study (default: the store's only one)")
    study.add_argument(
        "--window", type=positive, default=60.0, help="judge signals over windows of S seconds"
    )
    study.add_argument("--ttft-slo-s", type=positive, default=6.0, help="TTFT p99 objective, s")
    study.add_argument("--tbt-slo-s", type=positive, default=0.1, help="TBT p99 objective, s")
    study.add_argument("--json", action="store_true", help="print one JSON object")
    study.set_defaults(handler=_study)


def _study(args: argparse.Namespace) -> int:
    report = study(
        args.db or default_db_path(),
        service=args.service,
        window_s=args.window,
        slo={"ttft_p99_s": args.ttft_slo_s, "tbt_p99_s": args.tbt_slo_s},
    )
    if args.json:
        print(json.dumps(report, default=str))
    else:
        _print_table(report)
    return 0


def study(db: Path, *, service: str | None, window_s: float, slo: dict[str, float]) -> dict:
    """The study of one service's telemetry in ``db``, as the JSON document; on a terminal, a
    bar names its two steps (reading the telemetry, ranking the signals).

    Raises
    ------
    ValueError
        When the store has no telemetry (saying what to run first), several services and none
        named, or no offered load to judge signals against.
    """
    from heteroscale.progress import steps
    from policies.fleet import pressure_targets
    from signals import run_study
    from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
    from telemetry.store import TelemetryStore, one_service

    store = TelemetryStore(db)
    counts = store.row_counts()
    if not counts.get(INSTANCE_SAMPLES):
        raise ValueError(
            f"no telemetry in {db}: run `heteroscale run` (the embedded simulation) or "
            "`heteroscale ingest SOURCE... --db PATH` (your own) first"
        )
    if not counts.get(SERVICE_LOAD):
        raise ValueError(
            f"{db} has instance samples but no offered load (service_load): the study judges "
            "each signal against the load its role serves; ingest a request-rate or token-rate "
            "series with the telemetry (docs/ingest.md)"
        )
    held = store.distinct(INSTANCE_SAMPLES, ["service"])["service"].to_list()
    service = one_service(held, service)
    curated = (
        store.read("curated_policy", {"service": service}) if counts.get("curated_policy") else None
    )
    with steps(2, "study") as progress:
        progress.set_postfix_str("reading the telemetry")
        samples = store.read(INSTANCE_SAMPLES, {"service": service})
        load = store.read(SERVICE_LOAD, {"service": service})
        progress.update()
        progress.set_postfix_str("ranking the signals")
        table, recommended = run_study(
            samples,
            load,
            service=service,
            window_s=window_s,
            slo=slo,
            pressure_targets=(
                pressure_targets(curated.row(0, named=True), service)
                if curated is not None and curated.height
                else None
            ),
        )
    rows = [
        {key: _plain(value) for key, value in row.items()} for row in table.iter_rows(named=True)
    ]
    return {
        "service": service,
        "window_s": window_s,
        "slo": slo,
        "offered_load": _offered_load(store, service, counts),
        "signals": rows,
        "recommended": recommended and {k: _plain(v) for k, v in recommended.items()},
    }


def _offered_load(store, service: str, counts: dict[str, int]) -> dict:
    """Whether the load the signals were judged against was measured, or derived at ingest
    from served work (docs/ingest.md): a derived load is a lower bound wherever the cluster
    saturated, and a signal that flattens at saturation then looks better than it is."""
    from telemetry.ingest.load import SERVICE_LOAD_ORIGIN

    if not counts.get(SERVICE_LOAD_ORIGIN):
        return {"origin": "measured", "derived_days": []}
    origins = store.read(SERVICE_LOAD_ORIGIN, {"service": service})
    derived = sorted(str(day) for day in origins.filter(origins["origin"] == "derived")["day"])
    if not derived:
        return {"origin": "measured", "derived_days": []}
    return {
        "origin": "derived" if len(derived) == origins["day"].n_unique() else "mixed",
        "derived_days": derived,
        "note": (
            "no offered-load series was ingested for these days: the load is derived from "
            "served tokens and finished requests, a lower bound wherever the cluster saturated"
        ),
    }


def _plain(value):
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_table(report: dict) -> None:
    print(f"service {report['service']}, {report['window_s']:g} s windows")
    offered = report["offered_load"]
    if offered["origin"] != "measured":
        print(f"offered load on {', '.join(offered['derived_days'])}: {offered['note']}")
    header = f"{'rank':>4}  {'role':<8} {'gpu':<6} {'signal':<26} {'class':<18}"
    print(header + "".join(f"{title:>9}" for _, title, _ in _COLUMNS))
    for row in report["signals"]:
        cells = "".join(
            f"{fmt.format(row[key]) if row.get(key) is not None else '-':>9}"
            for key, _, fmt in _COLUMNS
        )
        candidate = f"{row['role']:<8} {row['gpu_type'] or 'all':<6} {row['signal']:<26}"
        print(f"{row['rank']:>4}  {candidate} {row['class']:<18}{cells}")
    best = report["recommended"]
    if best:
        target = best.get("target_per_instance")
        shown = (
            f"target {target:,.1f} per instance ({best['target_source']})"
            if target is not None
            else "no target: the data never neared the SLO and no pressure test covers it"
        )
        print(f"recommended: {best['role']} {best['signal']}, {shown}")
    else:
        print("recommended: none (no candidate is proportional)")
