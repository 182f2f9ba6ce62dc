"""Scale-in: drain a service's groups, those on the most valuable pools first (§5.4.5).

Groups are drained in order of the highest subgroup priority they occupy (highest first, ties
by id), each as far as the request and the balance rule allow (Algorithm 4's
``CanDeductOnePod`` loop); inside a group the ratio walk picks the role, and the instance comes
off its highest-priority node. Freed GPUs are not returned to the cycle's view: the next cycle
rebuilds it from the new state.
"""

from __future__ import annotations

from collections import Counter

from scheduler.cycle_view import CycleView
from scheduler.fill import roles_by_ratio
from scheduler.records import SCALE_IN
from scheduler.requirements import ROLES, ServiceRequirements
from scheduler.subgroups import Priority
from scheduler.working_group import WorkingGroup


class ScaleInCycle(CycleView):
    """A cycle view that can shrink groups (module docstring)."""

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

    def _highest_priority(self, group: WorkingGroup) -> Priority:
        live = [node_id for (_, node_id, _), n in group.members.items() if n > 0]
        return max((self.subgroups.priority_of(node_id) for node_id in live), default=Priority.LOW)

    def _drain(
        self, group: WorkingGroup, left: dict[str, int], needs: ServiceRequirements
    ) -> list[tuple[str, str, int]]:
        """Dry run: the longest ratio-walk of removals that ends with the group balanced."""
        counts, left = group.counts(), dict(left)
        members = Counter(group.members)
        steps: list[tuple[str, str, int]] = []
        keep = 0
        while True:
            step = None
            for role in roles_by_ratio(counts, left, needs, -1):
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
