"""Deployment Groups and the placement state the scheduler carries from cycle to cycle.

A Deployment Group (paper §5.4.2) is the unit of affinity: all its prefill and decode instances
share one domain, so KV-cache transfer between them stays under one switch. A service may have
several groups, in different domains. The state is immutable; each cycle returns a new one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from scheduler.domains import node_domain
from scheduler.requirements import AFFINITIES, ROLES
from scheduler.topology import Topology


@dataclass(frozen=True)
class Member:
    """The instances of one role of one group on one node.

    ``gpus_per_instance`` is kept per member, not looked up in the service's requirements,
    so changing the requirements later never changes what running instances occupy.
    """

    role: str
    node_id: str
    gpus_per_instance: int
    instances: int

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.instances < 1 or self.gpus_per_instance < 1:
            raise ValueError(f"a member needs >= 1 instance of >= 1 GPU, got {self}")

    @property
    def gpus(self) -> int:
        return self.instances * self.gpus_per_instance


@dataclass(frozen=True)
class DeploymentGroup:
    """Prefill and decode instances of one service confined to one affinity domain.

    ``domain`` is an S2 id, an S1 id or ``"*"`` according to ``affinity``
    (:mod:`scheduler.domains`).
    """

    id: str
    service: str
    affinity: str
    domain: str
    members: tuple[Member, ...]

    def __post_init__(self) -> None:
        if self.affinity not in AFFINITIES:
            raise ValueError(f"affinity must be one of {AFFINITIES}, got {self.affinity!r}")

    def instances(self, role: str) -> int:
        return sum(m.instances for m in self.members if m.role == role)


@dataclass(frozen=True)
class PlacementState:
    """Every live Deployment Group, and how many groups were ever created (for fresh ids).

    Build it with :meth:`empty` and let :func:`scheduler.place_cycle` return the next one.
    """

    groups: tuple[DeploymentGroup, ...] = ()
    groups_created: int = 0

    @classmethod
    def empty(cls) -> PlacementState:
        return cls()

    def groups_of(self, service: str) -> tuple[DeploymentGroup, ...]:
        return tuple(g for g in self.groups if g.service == service)

    def instances(self, service: str, role: str) -> int:
        """Instances of a role of a service, over all its groups."""
        return sum(g.instances(role) for g in self.groups_of(service))

    def used_gpus(self) -> Counter[str]:
        """GPUs taken per node id."""
        used: Counter[str] = Counter()
        for group in self.groups:
            for member in group.members:
                used[member.node_id] += member.gpus
        return used

    def check(self, topology: Topology) -> None:
        """Refuse a state that does not fit the topology, before anything is placed on it.

        Raises
        ------
        ValueError
            If a group id repeats, a member's node is unknown or outside its group's domain,
            or a node holds more GPUs than it has.
        """
        ids = Counter(g.id for g in self.groups)
        repeated = sorted(i for i, n in ids.items() if n > 1)
        if repeated:
            raise ValueError(f"deployment group ids repeat: {repeated}")
        for group in self.groups:
            for member in group.members:
                if not topology.has_node(member.node_id):
                    raise ValueError(f"group {group.id}: unknown node {member.node_id!r}")
                if node_domain(topology, group.affinity, member.node_id) != group.domain:
                    raise ValueError(
                        f"group {group.id}: node {member.node_id} is outside its"
                        f" {group.affinity} domain {group.domain}"
                    )
        for node_id, gpus in sorted(self.used_gpus().items()):
            capacity = topology.node(node_id).gpu_count
            if gpus > capacity:
                raise ValueError(f"node {node_id} holds {gpus} GPUs but has {capacity}")
