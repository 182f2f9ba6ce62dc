"""Scale-out: Algorithm 4's stage loop, its candidate search, and the second complete placement.

Stages go first by GPU type (each role's preferred type, then its fallbacks too, §5.4.1), then
by pool (low-priority subgroups only, then up to medium, then up to high, §5.4.3). In each
stage every candidate (growing one of the service's groups, or a new group in each affinity
domain, §5.4.5 step 3) gets a dry-run fill (:func:`scheduler.fill.fill`) and the best is
committed: one that leaves a remainder able to form a group of its own, then an existing group
before a new one, then the most instances placed, then (for new groups) the domain left with
the fewest free GPUs, then id. So a service opens a new group in a low pool rather than grow
an existing group into a higher one (§5.4.2).

Where the stage order committed a fill that strands the rest of the request before the last
stage, the service is placed a second time with such fills deferred to the last stage, and the
cheaper complete placement is kept (priced by :mod:`scheduler.weights`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from scheduler.cycle_view import CycleView
from scheduler.fill import capacity_bound, dry_run_fill
from scheduler.free_index import BucketKey, total_free
from scheduler.requirements import ROLES, RoleRequirements, ServiceRequirements
from scheduler.subgroups import Priority
from scheduler.working_group import Step, WorkingGroup


@dataclass(frozen=True)
class Plan:
    """A candidate scale-out: the group to grow (None: a new group in ``domain``), the role
    of each instance to add, in order, and whether it strands the rest of the request."""

    group_id: str | None
    affinity: str
    domain: str
    roles: tuple[str, ...]
    strands: bool


class ScaleOutCycle(CycleView):
    """A cycle view that can place scale-outs (module docstring)."""

    def scale_out(self, service: str, needs: ServiceRequirements, wanted: dict[str, int]) -> None:
        """Add up to ``wanted`` instances per role (:meth:`added` tells how many)."""
        self.requests[service] = (needs, dict(wanted))
        self._place(service)

    def _place(self, service: str, avoid: frozenset[str] = frozenset()) -> None:
        """Place a service's scale-out by the stage order, trying a second variant if needed.

        The paper's order commits, in each stage, the best fill even if it strands the rest of
        the request (say one prefill whose decoders then fit nowhere with the preferred type,
        or only in a pricier pool). Where that happened before the last stage, the placement is
        redone with such fills deferred to the last stage (fallback types, every pool), which
        often places the whole request as one more balanced group. The cheaper of the two
        complete placements (:meth:`_cost`) is kept, the stage order's on ties.

        ``avoid`` (the repair's) drops GPU types from every role that accepts another type;
        the placement is still priced by the service's own requirements.
        """
        needs, wanted = self.requests[service]
        needs = _avoiding(needs, avoid)
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
    ) -> Plan | None:
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
            fill = dry_run_fill(counts, profile, left, needs, orders)
            key = (fill.strands, 0, -len(fill.roles), group_id)
            if fill.roles and (best_key is None or key < best_key):
                best_key = key
                best = Plan(group_id, group.affinity, group.domain, fill.roles, fill.strands)
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
    ) -> tuple[tuple | None, Plan | None]:
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
            bound = capacity_bound(profile, left, needs, orders)
            if bound < wanted:
                short.append((bound, free, domain, profile))
                continue
            fill = dry_run_fill(empty, profile, left, needs, orders)
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
                fill = dry_run_fill(empty, profile, left, needs, orders)
                key = (fill.strands, 1, -len(fill.roles), free - fill.gpus, domain)
                if fill.roles and (best_key is None or key < best_key):
                    best_key, best_domain, best_fill = key, domain, fill
        if best_fill is None:
            return None, None
        plan = Plan(None, needs.affinity, best_domain, best_fill.roles, best_fill.strands)
        return best_key, plan

    def _commit(
        self,
        plan: Plan,
        service: str,
        needs: ServiceRequirements,
        orders: dict[str, tuple[BucketKey, ...]],
    ) -> None:
        """Place the plan's instances, node by node as the dry run did, and reserve them."""
        if plan.group_id is None:
            self.groups_created += 1
            group = WorkingGroup(
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
            self._take(service, Step(group.id, plan.affinity, plan.domain, role, node_id, size))


def _avoiding(needs: ServiceRequirements, avoid: frozenset[str]) -> ServiceRequirements:
    """The needs with the ``avoid`` GPU types dropped from each role that accepts another."""
    if not avoid:
        return needs
    roles = {}
    for role in ROLES:
        role_needs = needs.role(role)
        kept = tuple(t for t in role_needs.gpu_types if t not in avoid)
        if kept and len(kept) < len(role_needs.gpu_types):
            role_needs = RoleRequirements(kept[0], kept[1:], role_needs.gpus_per_instance)
        roles[role] = role_needs
    return replace(needs, prefill=roles["prefill"], decode=roles["decode"])
