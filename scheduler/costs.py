"""What a placement costs, read from its plan and outcome frames (see :mod:`scheduler.weights`).

The benchmark and ``heteroscale place`` price a replay with this; the greedy prices its own
candidates, and the ILP states its objective, with the same :func:`scheduler.weights.gpu_cost`.
"""

from __future__ import annotations

import polars as pl

from scheduler.placement import SCALE_OUT
from scheduler.requirements import ServiceRequirements
from scheduler.subgroups import Priority
from scheduler.weights import SHORTFALL_WEIGHT, gpu_cost


def placement_cost(
    plan: pl.DataFrame, outcomes: pl.DataFrame, requirements: dict[str, ServiceRequirements]
) -> dict[str, float]:
    """Price the scale-outs of a plan.

    Parameters
    ----------
    plan, outcomes : pl.DataFrame
        :func:`scheduler.plan_to_frame` and :func:`scheduler.outcomes_to_frame` of one or more
        cycles; scale-in rows are ignored.
    requirements : dict of str to ServiceRequirements

    Returns
    -------
    dict
        ``placed_cost`` (priority- and type-weighted GPUs placed), ``shortfall_gpus``,
        ``total_cost`` (placed cost plus :data:`SHORTFALL_WEIGHT` per unplaced GPU) and
        ``high_priority_gpus`` placed.
    """
    placed_cost = 0.0
    high = 0
    out = plan.filter(pl.col("action") == SCALE_OUT)
    for service, role, gpu_type, gpus, label in out.select(
        "service", "role", "gpu_type", "gpus", "subgroup_priority"
    ).iter_rows():
        priority = Priority[label.upper()]
        preferred = requirements[service].role(role).preferred_gpu_type
        placed_cost += gpus * gpu_cost(priority, gpu_type != preferred)
        high += gpus if priority == Priority.HIGH else 0
    shortfall = sum(
        short * requirements[service].role(role).gpus_per_instance
        for service, role, short in outcomes.filter(pl.col("action") == SCALE_OUT)
        .select("service", "role", "shortfall_instances")
        .iter_rows()
    )
    return {
        "placed_cost": placed_cost,
        "shortfall_gpus": shortfall,
        "total_cost": placed_cost + SHORTFALL_WEIGHT * shortfall,
        "high_priority_gpus": high,
    }
