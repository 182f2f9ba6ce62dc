"""The straightforward scale-out the indexed one must equal: rescan every node per instance.

This is how Algorithm 4's stage loop was first written here (before the free-GPU index of
:mod:`scheduler.free_index`): every candidate domain is dry-run node by node, every instance
scans the domain's nodes. Too slow for 10,000 nodes, but obviously what docs/scheduler.md
says, so the tests use it as the oracle for the fast path. Only the stage loop is replaced:
the second variant, the repair and the pricing of complete placements run on top of either,
so the oracle checks the index and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scheduler.domains import affinity_domains, domain_nodes
from scheduler.fill import roles_by_ratio
from scheduler.placement import _Cycle
from scheduler.requirements import ROLES, RoleRequirements, ServiceRequirements
from scheduler.subgroups import Priority
from scheduler.topology import Node
from scheduler.working_group import Step, WorkingGroup


class NaiveCycle(_Cycle):
    """A cycle whose stage loop rescans the tree; variants, repair and scale-in are the real
    ones, so the two cycles differ only in how a stage finds its best candidate."""

    def _stages(self, service, needs, wanted, *, defer_stranding):
        left = {role: wanted.get(role, 0) for role in ROLES}
        stranded_early = False
        for allow_fallback in (False, True):
            for cap in Priority:
                last = allow_fallback and cap == Priority.HIGH
                while any(left.values()):
                    plan = self._naive_plan(service, needs, left, allow_fallback, cap)
                    if plan is None or (plan[3] and defer_stranding and not last):
                        break
                    stranded_early = stranded_early or (plan[3] and not last)
                    self._naive_commit(plan, service, needs)
                    for role, _ in plan[2]:
                        left[role] -= 1
        return stranded_early

    def _naive_plan(self, service, needs, left, allow_fallback, cap):
        best_key, best = None, None
        for group in sorted(self.groups.values(), key=lambda g: g.id):
            counts = group.counts()
            if group.service != service or not any(counts.values()):
                continue
            nodes = domain_nodes(self.topology, group.affinity, group.domain)
            steps, strands = self._naive_fill(counts, nodes, left, needs, allow_fallback, cap)
            key = (strands, 0, -len(steps), group.id)
            if steps and (best_key is None or key < best_key):
                best_key, best = key, (group.id, group.domain, steps, strands)
        for domain in affinity_domains(self.topology, needs.affinity):
            nodes = domain_nodes(self.topology, needs.affinity, domain)
            empty = dict.fromkeys(ROLES, 0)
            steps, strands = self._naive_fill(empty, nodes, left, needs, allow_fallback, cap)
            if not steps:
                continue
            taken = sum(needs.role(role).gpus_per_instance for role, _ in steps)
            leftover = sum(self.index.free[node.id] for node in nodes) - taken
            key = (strands, 1, -len(steps), leftover, domain)
            if best_key is None or key < best_key:
                best_key, best = key, (None, domain, steps, strands)
        return best

    def _naive_fill(self, counts, nodes, left, needs: ServiceRequirements, allow_fallback, cap):
        counts, left = dict(counts), dict(left)
        taken: Counter[str] = Counter()
        steps: list[tuple[str, Node]] = []
        longest = longest_unstranded = 0
        while True:
            step = None
            for role in roles_by_ratio(counts, left, needs, +1):
                node = self._naive_node(nodes, needs.role(role), allow_fallback, cap, taken)
                if node is not None:
                    step = (role, node)
                    break
            if step is None:
                break
            role, node = step
            taken[node.id] += needs.role(role).gpus_per_instance
            counts[role] += 1
            left[role] -= 1
            steps.append(step)
            if needs.is_balanced(counts["prefill"], counts["decode"]):
                longest = len(steps)
                if needs.is_balanced(left["prefill"], left["decode"]):
                    longest_unstranded = longest
        if longest_unstranded:
            return tuple(steps[:longest_unstranded]), False
        return tuple(steps[:longest]), True

    def _naive_node(
        self,
        nodes: Sequence[Node],
        role_needs: RoleRequirements,
        allow_fallback: bool,
        cap: Priority,
        taken: Counter[str],
    ) -> Node | None:
        types = role_needs.gpu_types if allow_fallback else role_needs.gpu_types[:1]
        size = role_needs.gpus_per_instance
        best_key, best = None, None
        for node in nodes:
            if node.gpu_type not in types:
                continue
            priority = self.subgroups.priority_of(node.id)
            spare = self.index.free[node.id] - taken[node.id] - size
            if priority > cap or spare < 0:
                continue
            key = (types.index(node.gpu_type), priority, spare, node.id)
            if best_key is None or key < best_key:
                best_key, best = key, node
        return best

    def _naive_commit(self, plan, service, needs):
        group_id, domain, steps, _ = plan
        if group_id is None:
            self.groups_created += 1
            group = WorkingGroup(
                f"{service}/dg{self.groups_created:05d}", service, needs.affinity, domain, Counter()
            )
            self.groups[group.id] = group
            self.by_service.setdefault(service, []).append(group.id)
        else:
            group = self.groups[group_id]
        for role, node in steps:
            size = needs.role(role).gpus_per_instance
            self._take(service, Step(group.id, group.affinity, domain, role, node.id, size))
