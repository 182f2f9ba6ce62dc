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
- **Repair (ours).** After all services, each one left short or on a fallback type may swap
  places with up to :data:`REPAIR_RIVALS` services that took GPUs it accepts: both are undone
  and placed again, it first. The swap is kept only if it leaves fewer unplaced GPUs read from
  the highest service priority down, or as many and a lower cost; so a lower-priority service
  never makes a higher one short, but may move it to a fallback type or a pricier pool.
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

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from scheduler.domains import node_domain
from scheduler.free_index import BucketKey, FreeIndex, Profile, total_free
from scheduler.requirements import ROLES, RoleRequirements, ServiceRequirements
from scheduler.state import DeploymentGroup, Member, PlacementState
from scheduler.subgroups import Priority, classify_subgroups
from scheduler.topology import Topology
from scheduler.weights import SHORTFALL_WEIGHT, gpu_cost

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
#: Other services a short service may swap places with in :meth:`_Cycle.repair`: a bound on
#: the repair's work, which never touches a cycle where everything was placed.
REPAIR_RIVALS = 8


@dataclass(frozen=True)
class ScaleRequest:
    """Change one role of one service by ``delta_instances`` (positive: out, negative: in)."""

    service: str
    role: str
    delta_instances: int

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not isinstance(self.delta_instances, int) or isinstance(self.delta_instances, bool):
            raise ValueError(f"delta_instances must be an integer, got {self.delta_instances!r}")


@dataclass(frozen=True)
class AllocationRecord:
    """Instances of one role of one group added to or removed from one node in one cycle.

    ``affinity_satisfied`` is checked, not assumed: the node lies in the group's domain.
    """

    cycle: int
    service: str
    role: str
    action: str
    deployment_group: str
    node_id: str
    s2: str
    s1: str
    gpu_type: str
    gpus: int
    instances: int
    subgroup_priority: str
    affinity_satisfied: bool


@dataclass(frozen=True)
class RequestOutcome:
    """How much of one scale request the cycle carried out."""

    cycle: int
    service: str
    role: str
    action: str
    requested_instances: int
    placed_instances: int

    @property
    def shortfall_instances(self) -> int:
        return self.requested_instances - self.placed_instances


@dataclass(frozen=True)
class CycleResult:
    """The state after the cycle, what moved where, and how much of each request was met."""

    state: PlacementState
    records: tuple[AllocationRecord, ...]
    outcomes: tuple[RequestOutcome, ...]


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


@dataclass
class _Group:
    """A Deployment Group being changed within the cycle."""

    id: str
    service: str
    affinity: str
    domain: str
    #: (role, node id, GPUs per instance) -> instances
    members: Counter[tuple[str, str, int]]

    @classmethod
    def of(cls, group: DeploymentGroup) -> _Group:
        members = Counter(
            {(m.role, m.node_id, m.gpus_per_instance): m.instances for m in group.members}
        )
        return cls(group.id, group.service, group.affinity, group.domain, members)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ROLES, 0)
        for (role, _, _), instances in self.members.items():
            counts[role] += instances
        return counts

    def frozen(self) -> DeploymentGroup:
        members = tuple(
            Member(role, node_id, size, instances)
            for (role, node_id, size), instances in sorted(
                self.members.items(), key=lambda kv: (ROLES.index(kv[0][0]), kv[0][1], kv[0][2])
            )
            if instances > 0
        )
        return DeploymentGroup(self.id, self.service, self.affinity, self.domain, members)


@dataclass(frozen=True)
class _Plan:
    """A candidate scale-out: the group to grow (None: a new group in ``domain``), the role
    of each instance to add, in order, and whether it strands the rest of the request."""

    group_id: str | None
    affinity: str
    domain: str
    roles: tuple[str, ...]
    strands: bool


@dataclass(frozen=True)
class _Step:
    """One instance a scale-out committed in this cycle: enough to undo it or redo it."""

    group_id: str
    affinity: str
    domain: str
    role: str
    node_id: str
    size: int


@dataclass(frozen=True)
class _Fill:
    """A dry-run fill: the roles to add in order, whether they strand the rest of the request,
    and the GPUs they take."""

    roles: tuple[str, ...]
    strands: bool
    gpus: int


class _Cycle:
    """The working view of one cycle: the free-GPU index, the groups, the records so far."""

    def __init__(self, topology: Topology, state: PlacementState, cycle: int) -> None:
        self.topology = topology
        self.subgroups = classify_subgroups(topology)
        self.index = FreeIndex(topology, self.subgroups, state.used_gpus())
        self.groups = {group.id: _Group.of(group) for group in state.groups}
        self.by_service: dict[str, list[str]] = {}
        for group_id in sorted(self.groups):
            self.by_service.setdefault(self.groups[group_id].service, []).append(group_id)
        self.groups_created = state.groups_created
        self.cycle = cycle
        #: (action, group id, role, node id, GPUs per instance) -> instances, in decision order
        self.moves: Counter[tuple[str, str, str, str, int]] = Counter()
        self._orders: dict[tuple[tuple[str, ...], int, Priority], tuple[BucketKey, ...]] = {}
        #: service -> (requirements, instances wanted per role) of its scale-out, in order
        self.requests: dict[str, tuple[ServiceRequirements, dict[str, int]]] = {}
        #: service -> the instances its scale-out committed in this cycle, in order
        self.journal: dict[str, list[_Step]] = {}

    # -- scale-out ---------------------------------------------------------------------------

    def scale_out(self, service: str, needs: ServiceRequirements, wanted: dict[str, int]) -> None:
        """Add up to ``wanted`` instances per role (:meth:`added` tells how many)."""
        self.requests[service] = (needs, dict(wanted))
        self._place(service)

    def added(self, service: str) -> Counter[str]:
        """Instances per role the service's scale-out placed in this cycle."""
        return Counter(step.role for step in self.journal.get(service, ()))

    def _place(self, service: str) -> None:
        """Place a service's scale-out by the stage order, trying a second variant if needed.

        The paper's order commits, in each stage, the best fill even if it strands the rest of
        the request (say one prefill whose decoders then fit nowhere with the preferred type,
        or only in a pricier pool). Where that happened before the last stage, the placement is
        redone with such fills deferred to the last stage (fallback types, every pool), which
        often places the whole request as one more balanced group. The cheaper of the two
        complete placements (:meth:`_cost`) is kept, the stage order's on ties.
        """
        needs, wanted = self.requests[service]
        created = self.groups_created
        if not self._stages(service, needs, wanted, defer_stranding=False):
            return
        eager_cost, eager_created = self._cost(service), self.groups_created
        eager = self._unplace(service)
        self.groups_created = created
        self._stages(service, needs, wanted, defer_stranding=True)
        if self._cost(service) < eager_cost:
            return
        self._unplace(service)
        self._redo(service, eager)
        self.groups_created = eager_created

    def _stages(
        self,
        service: str,
        needs: ServiceRequirements,
        wanted: dict[str, int],
        *,
        defer_stranding: bool,
    ) -> bool:
        """The stage loop of Algorithm 4; whether it committed a stranding fill before the
        last stage (with ``defer_stranding``, it never does)."""
        left = {role: wanted.get(role, 0) for role in ROLES}
        stranded_early = False
        for allow_fallback in (False, True):
            for cap in Priority:
                last = allow_fallback and cap == Priority.HIGH
                orders = {r: self._order(needs.role(r), allow_fallback, cap) for r in ROLES}
                while any(left.values()):
                    plan = self._best_plan(service, needs, left, orders)
                    if plan is None or (plan.strands and defer_stranding and not last):
                        break
                    stranded_early = stranded_early or (plan.strands and not last)
                    self._commit(plan, service, needs, orders)
                    for role in plan.roles:
                        left[role] -= 1
        return stranded_early

    def _order(
        self, role_needs: RoleRequirements, allow_fallback: bool, cap: Priority
    ) -> tuple[BucketKey, ...]:
        """The buckets one instance of a role may go to, best first.

        Preferred GPU type first, then lowest subgroup priority up to ``cap``, then the
        tightest fit (fewest GPUs left over); within a bucket the smallest node id wins.
        """
        types = role_needs.gpu_types if allow_fallback else role_needs.gpu_types[:1]
        size = role_needs.gpus_per_instance
        key = (types, size, cap)
        if key not in self._orders:
            self._orders[key] = tuple(
                (gpu_type, priority, free)
                for gpu_type in types
                for priority in range(cap + 1)
                for free in range(size, self.index.max_free + 1)
            )
        return self._orders[key]

    def _best_plan(
        self,
        service: str,
        needs: ServiceRequirements,
        left: dict[str, int],
        orders: dict[str, tuple[BucketKey, ...]],
    ) -> _Plan | None:
        """The candidate to commit next, ranked as the module docstring says; None if none fits.

        Existing groups are tried first; one that strands nothing beats every new group, so
        the domains are then not searched at all.
        """
        best_key, best = None, None
        for group_id in self.by_service.get(service, ()):
            group = self.groups[group_id]
            counts = group.counts()
            if not any(counts.values()):
                continue
            profile = self.index.profile(group.affinity, group.domain)
            fill = self._fill(counts, profile, left, needs, orders)
            key = (fill.strands, 0, -len(fill.roles), group_id)
            if fill.roles and (best_key is None or key < best_key):
                best_key = key
                best = _Plan(group_id, group.affinity, group.domain, fill.roles, fill.strands)
        if best_key is not None and not best_key[0]:
            return best
        new_key, new = self._best_new_group(needs, left, orders)
        if new is not None and (best_key is None or new_key < best_key):
            return new
        return best

    def _best_new_group(
        self,
        needs: ServiceRequirements,
        left: dict[str, int],
        orders: dict[str, tuple[BucketKey, ...]],
    ) -> tuple[tuple | None, _Plan | None]:
        """The best domain to open a new group in, and its ranking key.

        Every domain with the same profile gives the same fill, so one fill per distinct
        profile suffices, on its smallest domain id. Profiles are visited by total free GPUs,
        fewest first: a fill that places the whole request strands nothing and, among such
        fills (which all add the same roles), the one leaving the fewest free GPUs wins, so the
        first complete fill ends the search. A profile whose capacity cannot hold the whole
        request is only filled if no complete fill exists.
        """
        wanted = sum(left.values())
        empty = dict.fromkeys(ROLES, 0)
        ranked = sorted(
            (total_free(profile), domains[0], profile)
            for profile, domains in self.index.profiles(needs.affinity).items()
        )
        best_key, best_domain, best_fill = None, None, None
        short = []
        for free, domain, profile in ranked:
            bound = _capacity_bound(profile, left, needs, orders)
            if bound < wanted:
                short.append((bound, free, domain, profile))
                continue
            fill = self._fill(empty, profile, left, needs, orders)
            if not fill.roles:
                continue
            key = (fill.strands, 1, -len(fill.roles), free - fill.gpus, domain)
            if best_key is None or key < best_key:
                best_key, best_domain, best_fill = key, domain, fill
            if len(fill.roles) == wanted:
                break
        else:
            for bound, free, domain, profile in short:
                beaten = best_key is not None and not best_key[0] and bound < -best_key[2]
                if bound == 0 or beaten:
                    continue
                fill = self._fill(empty, profile, left, needs, orders)
                key = (fill.strands, 1, -len(fill.roles), free - fill.gpus, domain)
                if fill.roles and (best_key is None or key < best_key):
                    best_key, best_domain, best_fill = key, domain, fill
        if best_fill is None:
            return None, None
        plan = _Plan(None, needs.affinity, best_domain, best_fill.roles, best_fill.strands)
        return best_key, plan

    def _fill(
        self,
        counts: dict[str, int],
        profile: Profile,
        left: dict[str, int],
        needs: ServiceRequirements,
        orders: dict[str, tuple[BucketKey, ...]],
    ) -> _Fill:
        """Dry run of growing a group by the ratio walk, on the domain's bucket sizes only.

        Every prefix that ends with the group balanced is a candidate, and the longest one
        whose remainder could still form a balanced group of its own is preferred over a longer
        one whose remainder could not (say two decoders and no prefill), which then only an
        existing group could absorb.
        """
        counts, left = dict(counts), dict(left)
        sizes = dict(profile)
        roles: list[str] = []
        gpus = [0]
        longest = longest_unstranded = 0
        while True:
            for role in _roles_by_ratio(counts, left, needs, +1):
                bucket = next((k for k in orders[role] if sizes.get(k)), None)
                if bucket is not None:
                    break
            else:
                break
            gpu_type, priority, free = bucket
            size = needs.role(role).gpus_per_instance
            sizes[bucket] -= 1
            after = (gpu_type, priority, free - size)
            sizes[after] = sizes.get(after, 0) + 1
            counts[role] += 1
            left[role] -= 1
            roles.append(role)
            gpus.append(gpus[-1] + size)
            if needs.is_balanced(counts["prefill"], counts["decode"]):
                longest = len(roles)
                if needs.is_balanced(left["prefill"], left["decode"]):
                    longest_unstranded = longest
        keep = longest_unstranded or longest
        return _Fill(tuple(roles[:keep]), not longest_unstranded, gpus[keep])

    def _commit(
        self,
        plan: _Plan,
        service: str,
        needs: ServiceRequirements,
        orders: dict[str, tuple[BucketKey, ...]],
    ) -> None:
        """Place the plan's instances, node by node as the dry run did, and reserve them."""
        if plan.group_id is None:
            self.groups_created += 1
            group = _Group(
                f"{service}/dg{self.groups_created:05d}",
                service,
                plan.affinity,
                plan.domain,
                Counter(),
            )
            self.groups[group.id] = group
            self.by_service.setdefault(service, []).append(group.id)
        else:
            group = self.groups[plan.group_id]
        for role in plan.roles:
            size = needs.role(role).gpus_per_instance
            node_id = self.index.first_node(plan.affinity, plan.domain, orders[role])
            self._take(service, _Step(group.id, plan.affinity, plan.domain, role, node_id, size))

    def _take(self, service: str, step: _Step) -> None:
        """Reserve one instance's GPUs, add it to its group and journal it."""
        self.index.take(step.node_id, step.size)
        self.groups[step.group_id].members[(step.role, step.node_id, step.size)] += 1
        self.moves[(SCALE_OUT, step.group_id, step.role, step.node_id, step.size)] += 1
        self.journal.setdefault(service, []).append(step)

    # -- trial placements and repair -----------------------------------------------------------

    def _cost(self, service: str) -> float:
        """Priority-, type- and shortfall-weighted GPUs of the service's scale-out so far
        (:mod:`scheduler.weights`), the price by which complete placements are compared."""
        needs, wanted = self.requests[service]
        cost = 0.0
        for step in self.journal.get(service, ()):
            preferred = needs.role(step.role).preferred_gpu_type
            fallback = self.topology.node(step.node_id).gpu_type != preferred
            cost += step.size * gpu_cost(self.subgroups.priority_of(step.node_id), fallback)
        added = self.added(service)
        for role, count in wanted.items():
            cost += SHORTFALL_WEIGHT * needs.role(role).gpus_per_instance * (count - added[role])
        return cost

    def _unplace(self, service: str) -> list[_Step]:
        """Undo the service's scale-out of this cycle; return what it had committed.

        Its GPUs return to the index (:meth:`FreeIndex.give`), and a group it created in this
        cycle is dropped once empty. Instances that ran at the start of the cycle, and GPUs
        freed by scale-in, are untouched.
        """
        steps = self.journal.pop(service, [])
        for step in steps:
            self.index.give(step.node_id, step.size)
            group = self.groups[step.group_id]
            _decrement(group.members, (step.role, step.node_id, step.size))
            _decrement(self.moves, (SCALE_OUT, step.group_id, step.role, step.node_id, step.size))
            if not group.members:
                del self.groups[step.group_id]
                self.by_service[service].remove(step.group_id)
        return steps

    def _redo(self, service: str, steps: list[_Step]) -> None:
        """Commit exactly the steps an :meth:`_unplace` returned, groups and ids included."""
        for step in steps:
            if step.group_id not in self.groups:
                self.groups[step.group_id] = _Group(
                    step.group_id, service, step.affinity, step.domain, Counter()
                )
                self.by_service.setdefault(service, []).append(step.group_id)
            self._take(service, step)

    def repair(self) -> None:
        """Re-place pairs of this cycle's scale-outs where that lowers shortfall or cost.

        For each service left short, in processing order: up to :data:`REPAIR_RIVALS` other
        services that took GPUs of a type it accepts are tried in turn. Both scale-outs are
        undone, the short service is placed first, then the other; the swap is kept only if
        it is better read from the highest service priority down (:meth:`_rank`), so no
        service ends shorter than a lower-priority one makes it. The other service may move
        to fallback types or pricier pools to make room, as the objective says: an unplaced
        GPU costs more than any placed one.
        """
        for service in list(self.requests):
            rivals = self._rivals(service)
            for rival in rivals[:REPAIR_RIVALS]:
                if not self._wanting(service):
                    break
                self._try_swap(service, rival)

    def _wanting(self, service: str) -> bool:
        """Whether the service's scale-out is short, or placed on a fallback GPU type."""
        needs, wanted = self.requests[service]
        added = self.added(service)
        if any(count > added[role] for role, count in wanted.items()):
            return True
        return any(
            self.topology.node(step.node_id).gpu_type != needs.role(step.role).preferred_gpu_type
            for step in self.journal.get(service, ())
        )

    def _rivals(self, service: str) -> list[str]:
        """Other services holding this cycle's GPUs of a type the service accepts, most first."""
        if not self._wanting(service):
            return []
        needs = self.requests[service][0]
        accepted = set(needs.prefill.gpu_types) | set(needs.decode.gpu_types)
        held = Counter()
        for other, steps in self.journal.items():
            for step in steps:
                if other != service and self.topology.node(step.node_id).gpu_type in accepted:
                    held[other] += step.size
        return sorted(held, key=lambda other: (-held[other], other))

    def _rank(self, services: tuple[str, ...]) -> tuple[float, ...]:
        """Unplaced GPUs per service priority, highest first, then the total cost."""
        short: Counter[int] = Counter()
        for service in services:
            needs, wanted = self.requests[service]
            added = self.added(service)
            for role, count in wanted.items():
                short[needs.priority] += needs.role(role).gpus_per_instance * (count - added[role])
        return (*(short[p] for p in sorted(short, reverse=True)), sum(map(self._cost, services)))

    def _try_swap(self, service: str, rival: str) -> None:
        pair = (service, rival)
        before, created = self._rank(pair), self.groups_created
        undone = {name: self._unplace(name) for name in pair}
        for name in pair:
            self._place(name)
        if self._rank(pair) < before:
            return
        for name in pair:
            self._unplace(name)
        self.groups_created = created
        for name in pair:
            self._redo(name, undone[name])

    # -- scale-in ----------------------------------------------------------------------------

    def scale_in(
        self, service: str, needs: ServiceRequirements, excess: dict[str, int]
    ) -> dict[str, int]:
        """Remove up to ``excess`` instances per role; return how many were removed per role."""
        left = {role: excess.get(role, 0) for role in ROLES}
        groups = [self.groups[group_id] for group_id in self.by_service.get(service, ())]
        groups.sort(key=lambda g: (-self._highest_priority(g), g.id))
        for group in groups:
            if not any(left.values()):
                break
            for role, node_id, size in self._drain(group, left, needs):
                group.members[(role, node_id, size)] -= 1
                self.moves[(SCALE_IN, group.id, role, node_id, size)] += 1
                left[role] -= 1
        return {role: excess.get(role, 0) - left[role] for role in ROLES}

    def _highest_priority(self, group: _Group) -> Priority:
        live = [node_id for (_, node_id, _), n in group.members.items() if n > 0]
        return max((self.subgroups.priority_of(node_id) for node_id in live), default=Priority.LOW)

    def _drain(
        self, group: _Group, left: dict[str, int], needs: ServiceRequirements
    ) -> list[tuple[str, str, int]]:
        """Dry run: the longest ratio-walk of removals that ends with the group balanced."""
        counts, left = group.counts(), dict(left)
        members = Counter(group.members)
        steps: list[tuple[str, str, int]] = []
        keep = 0
        while True:
            step = None
            for role in _roles_by_ratio(counts, left, needs, -1):
                held = [key for key, n in members.items() if key[0] == role and n > 0]
                if held:
                    step = min(held, key=lambda k: (-self.subgroups.priority_of(k[1]), k[1], k[2]))
                    break
            if step is None:
                break
            members[step] -= 1
            counts[step[0]] -= 1
            left[step[0]] -= 1
            steps.append(step)
            if needs.is_balanced(counts["prefill"], counts["decode"]):
                keep = len(steps)
        return steps[:keep]

    # -- results -----------------------------------------------------------------------------

    def new_state(self) -> PlacementState:
        groups = tuple(g.frozen() for g in self.groups.values() if any(g.counts().values()))
        return PlacementState(groups, self.groups_created)

    def allocation_records(self) -> tuple[AllocationRecord, ...]:
        records = []
        for (action, group_id, role, node_id, size), instances in self.moves.items():
            group = self.groups[group_id]
            where = self.topology.location(node_id)
            records.append(
                AllocationRecord(
                    cycle=self.cycle,
                    service=group.service,
                    role=role,
                    action=action,
                    deployment_group=group_id,
                    node_id=node_id,
                    s2=where.s2,
                    s1=where.s1,
                    gpu_type=self.topology.node(node_id).gpu_type,
                    gpus=instances * size,
                    instances=instances,
                    subgroup_priority=self.subgroups.priority_of(node_id).label,
                    affinity_satisfied=node_domain(self.topology, group.affinity, node_id)
                    == group.domain,
                )
            )
        return tuple(records)


def _decrement(counter: Counter, key) -> None:
    """Take one off a count, dropping the key at zero so undone moves leave no trace."""
    counter[key] -= 1
    if not counter[key]:
        del counter[key]


def _capacity_bound(
    profile: Profile,
    left: dict[str, int],
    needs: ServiceRequirements,
    orders: dict[str, tuple[BucketKey, ...]],
) -> int:
    """At most how many instances a fill of this profile could add: an upper bound, cheap.

    Each node counts with the most instances of any role still wanted that fits it.
    """
    allowed = {}
    for role in ROLES:
        if left[role] > 0:
            size = needs.role(role).gpus_per_instance
            for gpu_type, priority, _ in orders[role]:
                allowed[(gpu_type, priority)] = min(allowed.get((gpu_type, priority), size), size)
    bound = 0
    for (gpu_type, priority, free), count in profile:
        size = allowed.get((gpu_type, priority))
        if size is not None:
            bound += count * (free // size)
    return min(bound, sum(left.values()))


def _roles_by_ratio(
    counts: dict[str, int], left: dict[str, int], needs: ServiceRequirements, direction: int
) -> list[str]:
    """Roles still to move, in the order to try them.

    Nearest to the ratio after the move first, prefill on ties. When growing, a role the group
    does not have yet comes before all else: a group needs both, and a walk that filled a small
    domain with one role first could find no room left for the other.
    """

    def order(role: str) -> tuple[bool, float, int]:
        moved = {**counts, role: counts[role] + direction}
        lacking = direction > 0 and counts[role] == 0
        error = abs(needs.ratio_error(moved["prefill"], moved["decode"]))
        return (not lacking, error, ROLES.index(role))

    return sorted((r for r in ROLES if left[r] > 0), key=order)
