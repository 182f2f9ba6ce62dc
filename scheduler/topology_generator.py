"""Seeded synthetic topologies, for tests and benchmarks that need many trees or large ones."""

from __future__ import annotations

import numpy as np

from scheduler.topology import (
    LogicalCluster,
    Node,
    PhysicalCluster,
    S1MiniPod,
    S2BigPod,
    Topology,
    Vdc,
)

#: How the GPU types of one S2 are laid out; one per RDMA subgroup kind (§5.4.3).
_HOMOGENEOUS, _MIXED_S1S, _MIXED_NODES = "homogeneous", "mixed_s1s", "mixed_nodes"


def generate_topology(
    seed: int,
    *,
    s2_count: int = 4,
    s1_per_s2: int = 3,
    nodes_per_s1: int = 4,
    gpus_per_node: int = 8,
    gpu_types: tuple[str, ...] = ("H20", "L20"),
) -> Topology:
    """A one-VDC, one-cluster tree whose S2 big-pods are drawn from the three subgroup kinds.

    Parameters
    ----------
    seed : int
        Seed of the NumPy generator; the same arguments always give the same tree.
    s2_count, s1_per_s2, nodes_per_s1 : int
        Shape of the tree: S2 big-pods, S1 mini-pods per S2, nodes per S1.
    gpus_per_node : int
        GPUs on every node.
    gpu_types : tuple of str
        The GPU types to mix. With one type, or one S1 per S2 / one node per S1, the kinds that
        cannot exist are not drawn.

    Returns
    -------
    Topology
        Each S2 is, with equal chance among the kinds that can exist: all one type (an S2
        homogeneous subgroup); one type per S1 but several per S2 (S2 heterogeneous); or every
        S1 mixing types node by node (S1 heterogeneous). Ids encode the position
        (``s2-001``, ``s1-001-02``, ``n-001-02-03``).
    """
    if min(s2_count, s1_per_s2, nodes_per_s1, gpus_per_node) < 1 or not gpu_types:
        raise ValueError("tree sizes and gpus_per_node must be >= 1, with at least one GPU type")
    rng = np.random.default_rng(seed)
    layouts = [_HOMOGENEOUS]
    if len(gpu_types) > 1 and s1_per_s2 > 1:
        layouts.append(_MIXED_S1S)
    if len(gpu_types) > 1 and nodes_per_s1 > 1:
        layouts.append(_MIXED_NODES)
    big_pods = []
    for i in range(s2_count):
        layout = layouts[rng.integers(len(layouts))]
        offset = int(rng.integers(len(gpu_types)))
        mini_pods = []
        for j in range(s1_per_s2):
            nodes = []
            for k in range(nodes_per_s1):
                shift = {_HOMOGENEOUS: 0, _MIXED_S1S: j, _MIXED_NODES: k}[layout]
                gpu_type = gpu_types[(offset + shift) % len(gpu_types)]
                nodes.append(Node(f"n-{i:03d}-{j:02d}-{k:02d}", gpu_type, gpus_per_node))
            mini_pods.append(S1MiniPod(f"s1-{i:03d}-{j:02d}", tuple(nodes)))
        big_pods.append(S2BigPod(f"s2-{i:03d}", tuple(mini_pods)))
    cluster = LogicalCluster("lc-0", tuple(big_pods))
    return Topology((Vdc("vdc-0", (PhysicalCluster("pc-0", (cluster,)),)),))
