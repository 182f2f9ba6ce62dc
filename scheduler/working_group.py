"""A Deployment Group while a cycle changes it, and one reserved instance of a scale-out.

The frozen :class:`scheduler.state.DeploymentGroup` is what a cycle returns; inside the cycle
groups grow, shrink and are undone instance by instance, so they are kept as counters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from scheduler.requirements import ROLES
from scheduler.state import DeploymentGroup, Member


@dataclass
class WorkingGroup:
    """A Deployment Group being changed within the cycle."""

    id: str
    service: str
    affinity: str
    domain: str
    #: (role, node id, GPUs per instance) -> instances
    members: Counter[tuple[str, str, int]]

    @classmethod
    def of(cls, group: DeploymentGroup) -> WorkingGroup:
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
class Step:
    """One instance a scale-out committed in this cycle: enough to undo it or redo it."""

    group_id: str
    affinity: str
    domain: str
    role: str
    node_id: str
    size: int


def decrement(counter: Counter, key) -> None:
    """Take one off a count, dropping the key at zero so undone moves leave no trace."""
    counter[key] -= 1
    if not counter[key]:
        del counter[key]
