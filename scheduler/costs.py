"""What a placement costs: the one objective the greedy, the exact ILP and the reports share.

The paper's rule is to "consume the least high-priority resource" (§5.4.5 step 4) and to try
a role's preferred GPU type before compatible ones (§5.4.1). Algorithm 4 applies them as a
stage order; to *measure* how well it does, and to state the same goal as an integer program,
we price every placed GPU and every GPU left unplaced. The weights are ours:

- a GPU on a low / medium / high priority RDMA subgroup costs 1 / 2 / 4;
- a GPU of a fallback type costs 100 more, and a requested GPU left unplaced costs 10,000:
  for the cycles we compare (well under 25 GPUs of fallback or 2,500 of priority cost per
  service) that makes the objective lexicographic, in the paper's order: place what is asked,
  then use preferred types (§5.4.1), then spend the least high-priority resource (§5.4.3).

With a soft fallback price (8 per GPU, tried first) the exact optimum often puts a prefill
on a fallback type in a common pool where the greedy, preferring the type, opens the whole
group on a scarce mixed pool; docs/scheduler.md gives the figures.
"""

from __future__ import annotations

import polars as pl

from scheduler.placement import SCALE_OUT
from scheduler.requirements import ServiceRequirements
from scheduler.subgroups import Priority

#: Cost of one GPU on a subgroup of each priority.
PRIORITY_WEIGHT = {Priority.LOW: 1.0, Priority.MEDIUM: 2.0, Priority.HIGH: 4.0}
#: Extra cost of one GPU of a fallback (not the preferred) type.
FALLBACK_WEIGHT = 100.0
#: Cost of one requested GPU that was not placed.
SHORTFALL_WEIGHT = 10_000.0


def gpu_cost(priority: Priority, fallback: bool) -> float:
    """Cost of one placed GPU on a node of this priority, of a fallback type or not."""
    return PRIORITY_WEIGHT[priority] + (FALLBACK_WEIGHT if fallback else 0.0)


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
