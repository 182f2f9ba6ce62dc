"""``heteroscale place``: place per-cycle instance targets on a topology and print the figures."""

import argparse
import json
from pathlib import Path

import polars as pl

from scheduler import (
    DECISION_COLUMNS,
    TARGET_COLUMNS,
    load_topology,
    replay_targets,
    targets_from_decisions,
)
from scheduler.metrics import plan_metrics
from scheduler.requirements_loader import (
    build_requirements,
    load_requirements_document,
)

#: The table the pipeline stores the chosen policy's decisions in.
SCALING_DECISIONS = "scaling_decisions"


def _read_store(path: Path) -> pl.DataFrame:
    from telemetry.store import TelemetryStore

    store = TelemetryStore(path)
    if store.distinct(SCALING_DECISIONS, ["service"]) is None:
        raise ValueError(f"{path}: no {SCALING_DECISIONS} table; run `heteroscale run` first")
    return store.read(SCALING_DECISIONS)


#: Readers of the decisions file, by extension.
_READERS = {
    ".csv": lambda path: pl.read_csv(path, try_parse_dates=True),
    ".parquet": pl.read_parquet,
    ".json": pl.read_json,
    ".duckdb": _read_store,
}


def register(commands: argparse._SubParsersAction) -> None:
    place = commands.add_parser(
        "place",
        help="place per-cycle P/D targets on a topology (Algorithm 4) and report the plan",
        description=(
            "Replay per-cycle instance targets through the topology-aware scheduler and print "
            "the plan summary and its metrics: affinity satisfied, fragmentation, "
            "priority-weighted cost, shortfall (docs/scheduler.md)."
        ),
    )
    place.add_argument("--topology", type=Path, required=True, help="topology YAML or JSON")
    place.add_argument(
        "--decisions",
        type=Path,
        required=True,
        help=(
            f"CSV, Parquet or JSON (records) with columns {', '.join(TARGET_COLUMNS)}, or the "
            f"policy's {SCALING_DECISIONS} ({', '.join(DECISION_COLUMNS)}) as the pipeline "
            "writes them: exported, or the store itself (a .duckdb file)"
        ),
    )
    place.add_argument(
        "--requirements",
        type=Path,
        help="service requirements YAML (default: 4 x L20 prefill, 4 x H20 decode, S2 affinity)",
    )
    place.add_argument(
        "--plan-out",
        type=Path,
        help="also write the whole plan (one JSON record per node change) to this file",
    )
    place.add_argument("--json", action="store_true", help="print one JSON object")
    place.set_defaults(handler=_place)


def _place(args: argparse.Namespace) -> int:
    summary = place(args.topology, args.decisions, args.requirements, args.plan_out)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary["metrics"].items():
            print(f"{key:<28} {value}")
        for row in summary["services"]:
            print(
                f"{row['service']}: {row['prefill_instances']} prefill,"
                f" {row['decode_instances']} decode in {row['deployment_groups']} group(s)"
            )
    return 0


def place(
    topology_path: Path,
    decisions_path: Path,
    requirements_path: Path | None,
    plan_out: Path | None = None,
) -> dict:
    """Replay the decisions file on the topology; the figures as a JSON-ready dict.

    With ``plan_out``, the plan's records (:data:`scheduler.PLAN_SCHEMA`) are written there as
    a JSON array, through a temporary file renamed into place, so a reader never sees half a
    plan.

    Raises
    ------
    ValueError
        On an unreadable or invalid file, with the file named.
    """
    topology = load_topology(topology_path)
    reader = _READERS.get(decisions_path.suffix.lower())
    if reader is None:
        raise ValueError(f"{decisions_path}: unsupported extension; use {sorted(_READERS)}")
    if not decisions_path.is_file():
        raise ValueError(f"{decisions_path}: no such file")
    targets = reader(decisions_path)
    if set(DECISION_COLUMNS) <= set(targets.columns):
        targets = targets_from_decisions(targets)
    missing = [c for c in TARGET_COLUMNS if c not in targets.columns]
    if missing:
        raise ValueError(
            f"{decisions_path}: missing column(s) {missing}; give {list(TARGET_COLUMNS)}, or "
            f"the {SCALING_DECISIONS} columns {list(DECISION_COLUMNS)}"
        )
    document = load_requirements_document(requirements_path) if requirements_path else {}
    totals = targets.group_by("service").agg(pl.col("target_prefill", "target_decode").sum())
    ratios = {
        # Bad targets (negative, null) are refused by replay_targets with the row named.
        service: prefill / decode if (prefill or 0) > 0 and (decode or 0) > 0 else 1.0
        for service, prefill, decode in totals.sort("service").iter_rows()
    }
    requirements = build_requirements(
        document, ratios, source=str(requirements_path or "default requirements")
    )
    try:
        replay = replay_targets(topology, targets, requirements)
    except ValueError as error:
        raise ValueError(f"{decisions_path}: {error}") from error
    final = replay.instances.sort("cycle").group_by("service", maintain_order=True).last()
    if plan_out is not None:
        partial = plan_out.with_name(plan_out.name + ".partial")
        replay.plan.write_json(partial)
        partial.replace(plan_out)
    return {
        "topology": str(topology_path),
        "decisions": str(decisions_path),
        "plan_out": None if plan_out is None else str(plan_out),
        "plan_rows": replay.plan.height,
        "metrics": plan_metrics(topology, replay, requirements),
        "services": final.sort("service").drop("cycle").to_dicts(),
    }
