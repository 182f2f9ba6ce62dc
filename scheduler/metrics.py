"""Figures that judge a replayed placement: affinity, fragmentation, cost, shortfall, bandwidth.

They summarise a :class:`scheduler.ReplayResult` for the ``heteroscale place`` command and any
report: whether every instance sits in its group's domain, how scattered the free GPUs are
left, what the plan spent (:mod:`scheduler.costs`) and what it could not place.
"""

from __future__ import annotations

import statistics

from scheduler.bandwidth import group_kv_bandwidth_factor
from scheduler.costs import placement_cost
from scheduler.replay import ReplayResult
from scheduler.requirements import ServiceRequirements
from scheduler.state import PlacementState
from scheduler.topology import Topology


def fragmentation(topology: Topology, state: PlacementState) -> float:
    """Share of the free GPUs that sit on partly used nodes, in [0, 1].

    Free GPUs on partly used nodes cannot host an instance as large as a node; 0 means every
    free GPU is on an empty node, 1 that no node is empty. 0 when nothing is free.
    """
    used = state.used_gpus()
    free = sum(n.gpu_count - used[n.id] for n in topology.nodes)
    on_empty = sum(n.gpu_count for n in topology.nodes if used[n.id] == 0)
    return 0.0 if free == 0 else 1.0 - on_empty / free


def plan_metrics(
    topology: Topology, replay: ReplayResult, requirements: dict[str, ServiceRequirements]
) -> dict:
    """The figures of a replay, JSON-ready.

    Returns
    -------
    dict
        ``cycles``; ``requested_instances``, ``placed_instances``, ``shortfall_instances``
        (scale-out and scale-in together); ``affinity_satisfied`` (share of plan rows in their
        group's domain) and ``affinity_violations`` (rows); ``fragmentation`` after the last
        cycle; ``priority_weighted_cost``, ``shortfall_gpus`` and ``high_priority_gpus_placed``
        of the scale-outs (:mod:`scheduler.costs`); ``deployment_groups`` after the last cycle
        and their mean ``kv_bandwidth_factor`` (:mod:`scheduler.bandwidth`).
    """
    plan, outcomes = replay.plan, replay.outcomes
    cost = placement_cost(plan, outcomes, requirements)
    groups = replay.state.groups
    return {
        "cycles": replay.instances["cycle"].n_unique(),
        "requested_instances": int(outcomes["requested_instances"].sum()),
        "placed_instances": int(outcomes["placed_instances"].sum()),
        "shortfall_instances": int(outcomes["shortfall_instances"].sum()),
        "affinity_satisfied": float(plan["affinity_satisfied"].mean()) if plan.height else 1.0,
        "affinity_violations": int((~plan["affinity_satisfied"]).sum()),
        "fragmentation": fragmentation(topology, replay.state),
        "priority_weighted_cost": cost["placed_cost"],
        "shortfall_gpus": cost["shortfall_gpus"],
        "high_priority_gpus_placed": cost["high_priority_gpus"],
        "deployment_groups": len(groups),
        "kv_bandwidth_factor": statistics.fmean(
            group_kv_bandwidth_factor(topology, g) for g in groups
        )
        if groups
        else 1.0,
    }
