"""The exact placement of one cycle, as an integer program solved by HiGHS: the greedy's yardstick.

Algorithm 4 is greedy (§5.4.6). To know what that costs, the same cycle is stated as an ILP
with the same constraints and the objective of :mod:`scheduler.weights`, and solved to
optimality with HiGHS (``highspy``). Only small clusters are meant (the benchmark uses up to
200 nodes): the model has one integer per (service, role, group slot, node).

Model (one cycle, from the free GPUs left by ``state``; the services must have no groups yet):

- ``x[s, r, d, k, n]`` >= 0 integer: instances of role ``r`` of service ``s`` in group slot
  ``k`` of domain ``d`` (of the service's affinity level) on node ``n`` of ``d`` whose GPU type
  the role accepts;
- ``y[s, d, k]`` binary: that group exists;
- capacity: ``sum size(s, r) * x[s, r, d, k, n] <= free(n)`` for every node;
- request: ``sum_{d, k, n} x[s, r, d, k, n] + short[s, r] = wanted(s, r)``;
- group: with ``P`` and ``D`` its prefill and decode instances, ``y <= P <= M y``,
  ``y <= D <= M y`` and ``|P - pd_ratio * D| <= ratio_tolerance``, the balance rule of
  :meth:`ServiceRequirements.is_balanced`;
- objective: ``sum size * gpu_cost(priority(n), fallback) * x + SHORTFALL_WEIGHT * size * short``.

Affinity holds by construction (a slot's nodes are its domain's). Every placement the greedy
can make from an empty start, with at most ``slots_per_domain`` groups of a service in one
domain, is feasible here, so the optimum is a lower bound on the greedy's cost.

That optimum ignores **service priority**: it may leave a high-priority service short so that
more GPUs of lower-priority services fit, which the greedy (serving services by descending
priority, §5.4.1) never does. With ``service_priority=True`` the objective is lexicographic
instead: first the unplaced GPUs of the highest service priority are minimised, that minimum
is fixed as a constraint, then the next priority, and so on; last the cost above. That is the
best placement which honours priority order, the fair yardstick for the greedy. It is no
lower bound on the greedy's *cost* (the greedy may place high-priority services worse and
lower ones better), only on its shortfall vector read from the highest priority down.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy

from scheduler.domains import affinity_domains, domain_nodes
from scheduler.requirements import ROLES, ServiceRequirements
from scheduler.state import PlacementState
from scheduler.subgroups import classify_subgroups
from scheduler.topology import Topology
from scheduler.weights import SHORTFALL_WEIGHT, gpu_cost

_INTEGER = highspy.HighsVarType.kInteger


@dataclass(frozen=True)
class ExactResult:
    """The ILP's optimum (or best bound found, see ``optimal``)."""

    total_cost: float
    shortfall_gpus: int
    optimal: bool
    #: (service, role, domain, slot, node id) -> instances, non-zero entries only
    instances: dict[tuple[str, str, str, int, str], int]


def exact_placement(
    topology: Topology,
    wanted: dict[str, tuple[int, int]],
    requirements: dict[str, ServiceRequirements],
    *,
    state: PlacementState | None = None,
    slots_per_domain: int = 2,
    time_limit_s: float = 60.0,
    service_priority: bool = False,
) -> ExactResult:
    """Solve one cycle's scale-out exactly.

    Parameters
    ----------
    topology : Topology
    wanted : dict of str to (int, int)
        Prefill and decode instances to add per service.
    requirements : dict of str to ServiceRequirements
    state : PlacementState, optional
        Groups of *other* services, whose GPUs are not free; empty by default.
    slots_per_domain : int, default 2
        Groups one service may have in one domain.
    time_limit_s : float, default 60
        HiGHS stops there, per solve; ``optimal`` then says False.
    service_priority : bool, default False
        Minimise unplaced GPUs priority by priority, highest first, before the cost (one solve
        per distinct priority, then one for the cost; module docstring).

    Returns
    -------
    ExactResult

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.4.5 (the objective: least high-priority resource).
    """
    state = state or PlacementState.empty()
    if any(state.groups_of(service) for service in wanted):
        raise ValueError("exact_placement places services that have no groups yet")
    used = state.used_gpus()
    subgroups = classify_subgroups(topology)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit_s))
    highs.setOptionValue("mip_rel_gap", 0.0)
    on_node: dict[str, list] = {n.id: [] for n in topology.nodes}
    columns = {}
    #: service priority -> (shortfall column, GPUs per instance) of its services' roles
    shortfalls: dict[int, list[tuple[highspy.highs_var, int]]] = {}
    for service, counts in wanted.items():
        needs = requirements[service]
        short = {}
        for role, count in zip(ROLES, counts, strict=True):
            size = needs.role(role).gpus_per_instance
            short[role] = highs.addVariable(0, count, SHORTFALL_WEIGHT * size, _INTEGER)
            shortfalls.setdefault(needs.priority, []).append((short[role], size))
        placed = {role: [] for role in ROLES}
        for domain in affinity_domains(topology, needs.affinity):
            nodes = domain_nodes(topology, needs.affinity, domain)
            for slot in range(slots_per_domain):
                group = {role: [] for role in ROLES}
                for role, count in zip(ROLES, counts, strict=True):
                    role_needs = needs.role(role)
                    size = role_needs.gpus_per_instance
                    for node in nodes:
                        room = (node.gpu_count - used[node.id]) // size
                        if node.gpu_type not in role_needs.gpu_types or room < 1 or count < 1:
                            continue
                        fallback = node.gpu_type != role_needs.preferred_gpu_type
                        cost = size * gpu_cost(subgroups.priority_of(node.id), fallback)
                        x = highs.addVariable(0, min(room, count), cost, _INTEGER)
                        columns[(service, role, domain, slot, node.id)] = x
                        on_node[node.id].append(size * x)
                        group[role].append(x)
                        placed[role].append(x)
                if group["prefill"] and group["decode"]:
                    _group_rows(highs, needs, group, sum(counts))
                else:
                    for x in group["prefill"] + group["decode"]:
                        highs.changeColBounds(x.index, 0, 0)
        for role, count in zip(ROLES, counts, strict=True):
            highs.addConstr(sum(placed[role], 0) + short[role] == count)
    for node in topology.nodes:
        if on_node[node.id]:
            highs.addConstr(sum(on_node[node.id], 0) <= node.gpu_count - used[node.id])
    optimal = True
    if service_priority:
        optimal = _fix_shortfall_by_priority(highs, shortfalls)
    optimal = _solve(highs) and optimal
    values = highs.getSolution().col_value
    instances = {
        key: round(values[x.index]) for key, x in columns.items() if round(values[x.index]) > 0
    }
    shortfall = sum(
        (count - sum(n for k, n in instances.items() if k[0] == service and k[1] == role))
        * requirements[service].role(role).gpus_per_instance
        for service, counts in wanted.items()
        for role, count in zip(ROLES, counts, strict=True)
    )
    return ExactResult(
        total_cost=highs.getInfo().objective_function_value,
        shortfall_gpus=shortfall,
        optimal=optimal,
        instances=instances,
    )


def _solve(highs: highspy.Highs) -> bool:
    """Run HiGHS from the last solution found (if any); whether it proved optimality."""
    highs.run()
    status = highs.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
        raise RuntimeError(f"HiGHS ended with {highs.modelStatusToString(status)}")
    return status == highspy.HighsModelStatus.kOptimal


def _fix_shortfall_by_priority(
    highs: highspy.Highs, shortfalls: dict[int, list[tuple[highspy.highs_var, int]]]
) -> bool:
    """Minimise unplaced GPUs one service priority at a time, highest first, fixing each.

    Every solve starts from the previous solution, which stays feasible because each fixed
    minimum is what that solution attains. The model's costs are restored at the end, so the
    last solve (by the caller) minimises the cost among the priority-optimal placements.
    Returns whether every solve proved optimality.
    """
    count = highs.getNumCol()
    costs = list(highs.getLp().col_cost_)
    optimal = True
    for priority in sorted(shortfalls, reverse=True):
        tier = dict.fromkeys(range(count), 0.0)
        tier.update({x.index: float(size) for x, size in shortfalls[priority]})
        highs.changeColsCost(count, list(tier), list(tier.values()))
        optimal = _solve(highs) and optimal
        least = round(highs.getInfo().objective_function_value)
        highs.addConstr(sum((size * x for x, size in shortfalls[priority]), 0) <= least)
        highs.setSolution(highs.getSolution())
    highs.changeColsCost(count, list(range(count)), costs)
    highs.setSolution(highs.getSolution())
    return optimal


def _group_rows(highs: highspy.Highs, needs: ServiceRequirements, group: dict, big_m: int) -> None:
    """The balance rule for one group slot: both roles present iff the slot is used, in ratio."""
    exists = highs.addVariable(0, 1, 0.0, _INTEGER)
    prefill, decode = sum(group["prefill"], 0), sum(group["decode"], 0)
    for count in (prefill, decode):
        highs.addConstr(count - exists >= 0)
        highs.addConstr(count - big_m * exists <= 0)
    highs.addConstr(prefill - needs.pd_ratio * decode <= needs.ratio_tolerance)
    highs.addConstr(needs.pd_ratio * decode - prefill <= needs.ratio_tolerance)
