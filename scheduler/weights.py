"""The price of one GPU: the objective the greedy, the exact ILP and the reports share.

The paper's rule is to "consume the least high-priority resource" (§5.4.5 step 4) and to try
a role's preferred GPU type before compatible ones (§5.4.1). Algorithm 4 applies them as a
stage order; to *choose between* complete placements, to *measure* how well it does, and to
state the same goal as an integer program, we price every placed GPU and every GPU left
unplaced. The weights are ours:

- a GPU on a low / medium / high priority RDMA subgroup costs 1 / 2 / 4;
- a GPU of a fallback type costs 100 more, and a requested GPU left unplaced costs 10,000:
  for the cycles we compare (well under 25 GPUs of fallback or 2,500 of priority cost per
  service) that makes the objective lexicographic, in the paper's order: place what is asked,
  then use preferred types (§5.4.1), then spend the least high-priority resource (§5.4.3).

With a soft fallback price (8 per GPU, tried first) the exact optimum often puts a prefill
on a fallback type in a common pool where the greedy, preferring the type, opens the whole
group on a scarce mixed pool; docs/scheduler.md gives the figures.

This module imports nothing of the placement, so :mod:`scheduler.placement` can price its
own candidates with it.
"""

from __future__ import annotations

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
