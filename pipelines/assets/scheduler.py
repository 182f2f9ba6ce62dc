"""The placement asset: the chosen policy's decisions placed on the scenario's topology."""

import dagster as dg
import polars as pl

from pipelines.assets.policies import CURATION_KEY, SCALING_DECISIONS_KEY
from pipelines.metadata import ROW_COUNT, typed
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource
from policies.modes import placement_requirements
from scheduler import load_topology, replay_targets, targets_from_decisions
from scheduler.metrics import plan_metrics
from telemetry.store import TableWrite

PLACEMENT_PLAN_KEY = dg.AssetKey(["scheduler", "placement_plan"])


@dg.asset(
    key=PLACEMENT_PLAN_KEY,
    deps=[SCALING_DECISIONS_KEY, CURATION_KEY],
    group_name="scheduler",
    description="Where each decision's instances go: node, S1, S2, RDMA subgroup priority.",
    op_tags=STORE_STEP,
)
def placement_plan(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    """Replay the decisions' targets through Algorithm 4, cycle by cycle, from an empty cluster.

    Cycle 0 places the starting deployment, every later cycle the counts one decision that
    changed them asks the cluster to run; the service's needs are its curated pools and ratio
    (:func:`policies.modes.placement_requirements`). The metadata carries the plan's figures
    (:func:`scheduler.metrics.plan_metrics`): affinity, fragmentation, priority-weighted cost,
    shortfall, KV bandwidth factor.
    """
    service = scenario.service
    targets = targets_from_decisions(store.read("scaling_decisions", service=service))
    curated = store.read("curated_policy", service=service).row(0, named=True)
    requirements = placement_requirements(
        ("prefill", curated["prefill_gpu_type"], curated["prefill_gpus_per_instance"]),
        ("decode", curated["decode_gpu_type"], curated["decode_gpus_per_instance"]),
        curated["pd_ratio"],
    )
    context.log.info(f"placing {targets.height} cycles for {requirements}")
    topology = load_topology(scenario.topology_path)
    replay = replay_targets(topology, targets, {service: requirements})
    rows = store.store().write_many(
        [
            TableWrite("placement_plan", replay.plan, ("service",)),
            TableWrite("placement_outcomes", replay.outcomes, ("service",)),
        ]
    )[0]
    return dg.MaterializeResult(
        metadata=typed({ROW_COUNT: rows, **plan_metrics(topology, replay, {service: requirements})})
    )


@dg.asset_check(asset=PLACEMENT_PLAN_KEY, blocking=True, op_tags=STORE_STEP)
def placement_plan_respects_affinity(
    scenario: ScenarioResource, store: StoreResource
) -> dg.AssetCheckResult:
    """Every placed instance sits in its Deployment Group's affinity domain; a failure names
    the first placements outside it: service, role, group, node and decision cycle."""
    plan = store.read("placement_plan", service=scenario.service)
    outside = plan.filter(~pl.col("affinity_satisfied")).sort("cycle", "deployment_group")
    named = [
        f"{service} {role} of {group} on {node} in cycle {cycle}"
        for service, role, group, node, cycle in outside.select(
            "service", "role", "deployment_group", "node_id", "cycle"
        ).rows()
    ]
    more = f"; {len(named) - 5} more" if len(named) > 5 else ""
    return dg.AssetCheckResult(
        passed=outside.is_empty(),
        description="; ".join(named[:5]) + more
        or f"{plan.height} placements, all within their group's affinity domain",
        metadata=typed({"rows": plan.height, "violations": outside.height}),
    )


@dg.asset_check(asset=PLACEMENT_PLAN_KEY, op_tags=STORE_STEP)
def placement_plan_places_every_instance(
    scenario: ScenarioResource, store: StoreResource
) -> dg.AssetCheckResult:
    """Warn when the topology could not host what the policy asked for (a shortfall)."""
    outcomes = store.read("placement_outcomes", service=scenario.service)
    short = outcomes.filter(pl.col("shortfall_instances") > 0).sort("cycle")
    shortfall = int(short["shortfall_instances"].sum())
    first = short.row(0, named=True) if shortfall else None
    return dg.AssetCheckResult(
        passed=shortfall == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{shortfall} instances not placed in {short.height} cycles, the first "
            f"{first['shortfall_instances']} {first['service']} {first['role']} in cycle "
            f"{first['cycle']}"
            if first
            else "every instance placed"
        ),
        metadata=typed({"shortfall_instances": shortfall}),
    )
