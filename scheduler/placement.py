"""One scheduling cycle: scale requests in, a new placement state and allocation records out.

This is the paper's Algorithm 4 (Network Affinity-aware Scheduling and Allocation, §5.4.5-6)
with the choices it leaves open made explicit (docs/scheduler.md lists them):

- **Services, not single requests, are the unit.** A service's prefill and decode requests of a
  cycle are handled together, services in descending priority (ties by name), so the two roles
  scale out or in together (§5.4.4).
- **Scale-out** searches stage by stage: first only each role's preferred GPU type, then its
  compatible fallbacks too (§5.4.1); within that, nodes of low-priority subgroups only, then up
  to medium, then up to high (§5.4.3). In each stage it evaluates every candidate, growing each
  of the service's groups or creating a group in each affinity domain, by a dry-run fill, and
  commits the best one: one that leaves a remainder able to form a group of its own, then an
  existing group before a new one, then the most instances placed, then (for new groups) the
  domain left with the fewest free GPUs, then id. It repeats until the request is met or no
  candidate places anything, then moves to the next stage. So a service opens a new group in a
  low-priority pool rather than grow into a high-priority one (§5.4.2).
- **Complete placements are priced.** Where the stage order committed a fill that strands the
  rest of the request before the last stage, the service is placed a second time with such
  fills deferred to the last stage, and the cheaper complete placement is kept (priced by
  :mod:`scheduler.weights`: shortfall, then fallback types, then pool priority).
- **Virtual allocation.** Every committed instance is deducted from the cycle's free-GPU view at
  once, so later (lower-priority) services cannot take it (§5.4.5 step 5).
- **Repair (ours, bounded).** After all services, a local search over the order in which
  they were placed (:mod:`scheduler.repair`): windows of this cycle's scale-outs are undone
  and placed again in another order, or with earlier services avoiding a GPU type a later
  one lacks. A trial is kept only if it leaves fewer unplaced GPUs read from the highest
  service priority down, or as many and a lower cost; so a lower-priority service never makes
  a higher one short, but may move it to a fallback type or a pricier pool.
- **Scale-in** drains the service's groups in order of the highest subgroup priority they
  occupy (highest first, ties by id); inside a group it removes instances from the
  highest-priority nodes first. Freed GPUs are not returned to the view: the next cycle
  rebuilds it from the new state (§5.4.5).
- **Ratio.** A fill adds (or a drain removes) one instance at a time: a role the group lacks
  first, otherwise the role that leaves the group closest to its ``pd_ratio``. Only a prefix
  that ends with the group balanced (:meth:`ServiceRequirements.is_balanced`) is committed, so
  every group ends every cycle within tolerance; what cannot be placed that way is reported as
  shortfall.
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.records import (
    SCALE_IN,
    SCALE_OUT,
    AllocationRecord,
    CycleResult,
    RequestOutcome,
    ScaleRequest,
)
from scheduler.repair import RepairingCycle
from scheduler.requirements import ROLES, ServiceRequirements
from scheduler.scale_in import ScaleInCycle
from scheduler.state import PlacementState
from scheduler.topology import Topology

__all__ = [
    "SCALE_IN",
    "SCALE_OUT",
    "AllocationRecord",
    "CycleResult",
    "RequestOutcome",
    "ScaleRequest",
    "place_cycle",
]


class _Cycle(RepairingCycle, ScaleInCycle):
    """One cycle's working view with scale-out, repair and scale-in (one module each)."""


def place_cycle(
    topology: Topology,
    state: PlacementState,
    requests: Iterable[ScaleRequest],
    requirements: dict[str, ServiceRequirements],
    *,
    cycle: int = 0,
) -> CycleResult:
    """Place one cycle's scale requests on the topology.

    Parameters
    ----------
    topology : Topology
        The cluster; its RDMA subgroups are classified from it.
    state : PlacementState
        The groups running at the start of the cycle (:meth:`PlacementState.empty` at first).
    requests : iterable of ScaleRequest
        At most one per service and role; zero deltas are ignored.
    requirements : dict of str to ServiceRequirements
        Needs of every service that has a request.
    cycle : int, default 0
        Copied into every record and outcome.

    Returns
    -------
    CycleResult
        The new state, one :class:`AllocationRecord` per (action, group, role, node, instance
        size) in the order they were decided (a placement redone by the repair comes after
        the ones it did not touch), and one :class:`RequestOutcome` per non-zero
        request, ordered like the processing (service priority, then name, then role).

    Raises
    ------
    ValueError
        If a request names a service without requirements, a service and role is requested
        twice, or the state does not fit the topology.

    Notes
    -----
    Never over-allocates a node, never places a group member outside its affinity domain,
    leaves every group it touches balanced, and is deterministic: all ties break on ids. The
    second complete placement and the repair (module docstring) only undo and redo this
    cycle's scale-outs; running instances and GPUs freed by scale-in are never touched.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.4.2-§5.4.6, Algorithm 4.
    """
    state.check(topology)
    deltas = _deltas_by_service(requests, requirements)
    run = _Cycle(topology, state, cycle)
    removed = {}
    for service, by_role in deltas.items():
        needs = requirements[service]
        removed[service] = run.scale_in(
            service, needs, {r: -d for r, d in by_role.items() if d < 0}
        )
        run.scale_out(service, needs, {r: d for r, d in by_role.items() if d > 0})
    run.repair()
    outcomes = []
    for service, by_role in deltas.items():
        added = run.added(service)
        for role, delta in by_role.items():
            if delta > 0:
                outcome = RequestOutcome(cycle, service, role, SCALE_OUT, delta, added[role])
            else:
                outcome = RequestOutcome(
                    cycle, service, role, SCALE_IN, -delta, removed[service][role]
                )
            outcomes.append(outcome)
    return CycleResult(run.new_state(), run.allocation_records(), tuple(outcomes))


def _deltas_by_service(
    requests: Iterable[ScaleRequest], requirements: dict[str, ServiceRequirements]
) -> dict[str, dict[str, int]]:
    """Non-zero deltas per service and role, services in processing order."""
    deltas: dict[str, dict[str, int]] = {}
    for request in requests:
        if request.service not in requirements:
            raise ValueError(f"no ServiceRequirements for service {request.service!r}")
        by_role = deltas.setdefault(request.service, {})
        if request.role in by_role:
            raise ValueError(f"service {request.service!r} role {request.role!r} requested twice")
        by_role[request.role] = request.delta_instances
    order = sorted(deltas, key=lambda s: (-requirements[s].priority, s))
    return {
        service: {r: deltas[service][r] for r in ROLES if deltas[service].get(r, 0) != 0}
        for service in order
    }
