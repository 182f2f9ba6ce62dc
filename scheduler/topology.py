"""The topological resource tree the scheduler places instances on (paper §5.4.3, Figure 3).

VDC -> physical cluster -> logical cluster -> S2 big-pod -> S1 mini-pod -> node. The two switch
levels are what matter for placement: instances under one S1 (or one S2) share a fast RDMA
domain, so prefill->decode KV-cache transfer stays local. The levels above S2 are kept so a
real inventory can be described as it is, and so a later multi-cluster scheduler has them.

The tree is immutable; lookups by id are built once, lazily, because placement asks for them
per node and per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


class TopologyError(ValueError):
    """A topology that cannot describe a cluster: bad values, or an id used twice."""


@dataclass(frozen=True)
class Node:
    """One machine: its GPUs are all of one type (an instance never spans nodes)."""

    id: str
    gpu_type: str
    gpu_count: int

    def __post_init__(self) -> None:
        _check_id(self.id)
        if not isinstance(self.gpu_type, str) or not self.gpu_type:
            raise TopologyError(f"gpu_type must be a non-empty string, got {self.gpu_type!r}")
        if (
            not isinstance(self.gpu_count, int)
            or isinstance(self.gpu_count, bool)
            or self.gpu_count < 1
        ):
            raise TopologyError(f"gpu_count must be a positive integer, got {self.gpu_count!r}")


@dataclass(frozen=True)
class S1MiniPod:
    """Nodes under one S1 (leaf) switch: the tightest RDMA domain."""

    id: str
    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        _check_id(self.id)

    @property
    def gpu_types(self) -> frozenset[str]:
        return frozenset(node.gpu_type for node in self.nodes)


@dataclass(frozen=True)
class S2BigPod:
    """Mini-pods under one S2 (aggregation) switch: the usual P/D affinity domain (§5.4.2)."""

    id: str
    mini_pods: tuple[S1MiniPod, ...]

    def __post_init__(self) -> None:
        _check_id(self.id)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(node for mini_pod in self.mini_pods for node in mini_pod.nodes)

    @property
    def gpu_types(self) -> frozenset[str]:
        return frozenset(node.gpu_type for node in self.nodes)


@dataclass(frozen=True)
class LogicalCluster:
    id: str
    big_pods: tuple[S2BigPod, ...]

    def __post_init__(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True)
class PhysicalCluster:
    id: str
    logical_clusters: tuple[LogicalCluster, ...]

    def __post_init__(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True)
class Vdc:
    """A virtual data centre, the root of one site's tree."""

    id: str
    physical_clusters: tuple[PhysicalCluster, ...]

    def __post_init__(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True)
class NodeLocation:
    """Where a node sits: the id of every ancestor, so records can name its S2 and S1."""

    vdc: str
    physical_cluster: str
    logical_cluster: str
    s2: str
    s1: str


class DuplicateIdError(TopologyError):
    """An id used twice on one level; the loader turns it into a message naming both places."""

    def __init__(self, level: str, item_id: str) -> None:
        super().__init__(f"{level} id {item_id!r} is used more than once")
        self.level = level
        self.item_id = item_id


@dataclass(frozen=True)
class Topology:
    """The whole tree. Ids are unique per level, so an S2, S1 or node id names one thing.

    Raises
    ------
    DuplicateIdError
        If two items on the same level share an id.
    """

    vdcs: tuple[Vdc, ...]

    def __post_init__(self) -> None:
        levels: dict[str, list[str]] = {
            "vdc": [v.id for v in self.vdcs],
            "physical_cluster": [p.id for _, p in self._physical_clusters()],
            "logical_cluster": [c.id for _, _, c in self._logical_clusters()],
            "s2": [b.id for b in self.big_pods],
            "s1": [m.id for b in self.big_pods for m in b.mini_pods],
            "node": [n.id for n in self.nodes],
        }
        for level, ids in levels.items():
            seen: set[str] = set()
            for item_id in ids:
                if item_id in seen:
                    raise DuplicateIdError(level, item_id)
                seen.add(item_id)

    def _physical_clusters(self):
        return [(v, p) for v in self.vdcs for p in v.physical_clusters]

    def _logical_clusters(self):
        return [(v, p, c) for v, p in self._physical_clusters() for c in p.logical_clusters]

    @cached_property
    def big_pods(self) -> tuple[S2BigPod, ...]:
        """Every S2 big-pod, in document order."""
        return tuple(b for _, _, c in self._logical_clusters() for b in c.big_pods)

    @cached_property
    def nodes(self) -> tuple[Node, ...]:
        """Every node, in document order."""
        return tuple(n for b in self.big_pods for n in b.nodes)

    @cached_property
    def _node_index(self) -> dict[str, tuple[Node, NodeLocation]]:
        return {
            n.id: (n, NodeLocation(v.id, p.id, c.id, b.id, m.id))
            for v, p, c in self._logical_clusters()
            for b in c.big_pods
            for m in b.mini_pods
            for n in m.nodes
        }

    @cached_property
    def _big_pod_index(self) -> dict[str, S2BigPod]:
        return {b.id: b for b in self.big_pods}

    @cached_property
    def _mini_pod_index(self) -> dict[str, S1MiniPod]:
        return {m.id: m for b in self.big_pods for m in b.mini_pods}

    def node(self, node_id: str) -> Node:
        return self._node_index[node_id][0]

    def location(self, node_id: str) -> NodeLocation:
        return self._node_index[node_id][1]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._node_index

    def big_pod(self, s2_id: str) -> S2BigPod:
        return self._big_pod_index[s2_id]

    def mini_pod(self, s1_id: str) -> S1MiniPod:
        return self._mini_pod_index[s1_id]

    @property
    def mini_pods(self) -> tuple[S1MiniPod, ...]:
        """Every S1 mini-pod, in document order."""
        return tuple(self._mini_pod_index.values())

    @property
    def total_gpus(self) -> int:
        return sum(n.gpu_count for n in self.nodes)


def _check_id(item_id: object) -> None:
    if not isinstance(item_id, str) or not item_id:
        raise TopologyError(f"id must be a non-empty string, got {item_id!r}")
