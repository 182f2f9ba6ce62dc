"""RDMA subgroups: which switch domains are common and which are scarce (paper §5.4.3).

A heterogeneous P/D service with tight affinity (say prefill on L20 and decode on H20 under one
S1) can only run where GPU types mix under one switch. Such places are rare, so the scheduler
ranks every node by the kind of domain it sits in and spends the common kinds first.

Classification (the paper names the three kinds; the rule for mixed S2s is ours):

- an S2 whose nodes are all one GPU type is one **S2 homogeneous** subgroup, priority low;
- an S1 that mixes GPU types is one **S1 heterogeneous** subgroup, priority high;
- in an S2 that mixes types, the S1s that are each homogeneous form one **S2 heterogeneous**
  subgroup, priority medium, even where some of its S1s are S1 heterogeneous: those S1s are
  their own high subgroups and the rest of the S2 still offers several types at S2 affinity.

Every node therefore belongs to exactly one subgroup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from scheduler.topology import S2BigPod, Topology


class Priority(IntEnum):
    """How valuable a pool is; the scheduler consumes lower values first."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class SubgroupKind(Enum):
    S2_HOMOGENEOUS = "s2_homogeneous"
    S2_HETEROGENEOUS = "s2_heterogeneous"
    S1_HETEROGENEOUS = "s1_heterogeneous"

    @property
    def priority(self) -> Priority:
        return _KIND_PRIORITY[self]


_KIND_PRIORITY = {
    SubgroupKind.S2_HOMOGENEOUS: Priority.LOW,
    SubgroupKind.S2_HETEROGENEOUS: Priority.MEDIUM,
    SubgroupKind.S1_HETEROGENEOUS: Priority.HIGH,
}


@dataclass(frozen=True)
class RdmaSubgroup:
    """A set of S1 mini-pods inside one S2 that share a subgroup kind.

    ``id`` is ``s2:<S2 id>`` for the S2-level kinds and ``s1:<S1 id>`` for an S1 heterogeneous
    subgroup, so it is unique even if an S1 and an S2 share an id.
    """

    id: str
    kind: SubgroupKind
    s2: str
    s1s: tuple[str, ...]
    gpu_types: tuple[str, ...]

    @property
    def priority(self) -> Priority:
        return self.kind.priority


@dataclass(frozen=True)
class RdmaSubgroups:
    """All subgroups of a topology, with the lookup placement needs: node -> subgroup."""

    subgroups: tuple[RdmaSubgroup, ...]
    node_subgroup: dict[str, RdmaSubgroup]

    def priority_of(self, node_id: str) -> Priority:
        return self.node_subgroup[node_id].priority


def classify_subgroups(topology: Topology) -> RdmaSubgroups:
    """Split every S2 of the topology into RDMA subgroups and rank them.

    Parameters
    ----------
    topology : Topology

    Returns
    -------
    RdmaSubgroups
        Subgroups in document order of their S2 (within an S2: S2-level subgroup first, then
        the S1 heterogeneous ones in document order), and the subgroup of every node.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.4.3, Figure 3.
    """
    subgroups: list[RdmaSubgroup] = []
    node_subgroup: dict[str, RdmaSubgroup] = {}
    for big_pod in topology.big_pods:
        for subgroup in _split(big_pod):
            subgroups.append(subgroup)
            for mini_pod in big_pod.mini_pods:
                if mini_pod.id in subgroup.s1s:
                    node_subgroup.update({node.id: subgroup for node in mini_pod.nodes})
    return RdmaSubgroups(tuple(subgroups), node_subgroup)


def _split(big_pod: S2BigPod) -> list[RdmaSubgroup]:
    if len(big_pod.gpu_types) <= 1:
        return [
            RdmaSubgroup(
                f"s2:{big_pod.id}",
                SubgroupKind.S2_HOMOGENEOUS,
                big_pod.id,
                tuple(m.id for m in big_pod.mini_pods),
                tuple(sorted(big_pod.gpu_types)),
            )
        ]
    uniform = [m for m in big_pod.mini_pods if len(m.gpu_types) <= 1]
    mixed = [m for m in big_pod.mini_pods if len(m.gpu_types) > 1]
    split = []
    if uniform:
        types = sorted({t for m in uniform for t in m.gpu_types})
        split.append(
            RdmaSubgroup(
                f"s2:{big_pod.id}",
                SubgroupKind.S2_HETEROGENEOUS,
                big_pod.id,
                tuple(m.id for m in uniform),
                tuple(types),
            )
        )
    split.extend(
        RdmaSubgroup(
            f"s1:{m.id}",
            SubgroupKind.S1_HETEROGENEOUS,
            big_pod.id,
            (m.id,),
            tuple(sorted(m.gpu_types)),
        )
        for m in mixed
    )
    return split
