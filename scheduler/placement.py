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
- **Virtual allocation.** Every committed instance is deducted from the cycle's free-GPU view at
  once, so later (lower-priority) services cannot take it (§5.4.5 step 5).
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

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"


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
        size) in the order they were decided, and one :class:`RequestOutcome` per non-zero
        request, ordered like the processing (service priority, then name, then role).

    Raises
    ------
    ValueError
        If a request names a service without requirements, a service and role is requested
        twice, or the state does not fit the topology.

    Notes
    -----
    Never over-allocates a node, never places a group member outside its affinity domain,
    leaves every group it touches balanced, and is deterministic: all ties break on ids.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.4.2-§5.4.6, Algorithm 4.
    """
    state.check(topology)
    deltas = _deltas_by_service(requests, requirements)
    run = _Cycle(topology, state, cycle)
    outcomes = []
    for service, by_role in deltas.items():
        needs = requirements[service]
        removed = run.scale_in(service, needs, {r: -d for r, d in by_role.items() if d < 0})
        added = run.scale_out(service, needs, {r: d for r, d in by_role.items() if d > 0})
        for role, delta in by_role.items():
            action, done = (SCALE_OUT, added[role]) if delta > 0 else (SCALE_IN, removed[role])
            outcomes.append(RequestOutcome(cycle, service, role, action, abs(delta), done))
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
    """A candidate scale-out: the group to grow (None: a new group in ``domain``) and the role
    of each instance to add, in order."""

    group_id: str | None
    affinity: str
    domain: str
    roles: tuple[str, ...]


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

    # -- scale-out ---------------------------------------------------------------------------

    def scale_out(
        self, service: str, needs: ServiceRequirements, wanted: dict[str, int]
    ) -> dict[str, int]:
        """Add up to ``wanted`` instances per role; return how many were added per role."""
        left = {role: wanted.get(role, 0) for role in ROLES}
        for allow_fallback in (False, True):
            for cap in Priority:
                orders = {r: self._order(needs.role(r), allow_fallback, cap) for r in ROLES}
                while any(left.values()):
                    plan = self._best_plan(service, needs, left, orders)
                    if plan is None:
                        break
                    self._commit(plan, service, needs, orders)
                    for role in plan.roles:
                        left[role] -= 1
        return {role: wanted.get(role, 0) - left[role] for role in ROLES}

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
                best = _Plan(group_id, group.affinity, group.domain, fill.roles)
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
        return best_key, _Plan(None, needs.affinity, best_domain, best_fill.roles)

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
            self.index.take(node_id, size)
            group.members[(role, node_id, size)] += 1
            self.moves[(SCALE_OUT, group.id, role, node_id, size)] += 1

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
