"""A topology-blind first-fit placement: the baseline Kubernetes' default scheduling resembles.

It knows GPU types (a node selector would) but not switches, Deployment Groups or RDMA
subgroups: every instance goes to the first node, in document order, with room and an
accepted type (preferred type first). Services go in the greedy's order (priority, then name).
It exists to measure what topology-awareness saves: affinity violations and KV bandwidth.
"""

from __future__ import annotations

from collections import Counter

from scheduler.bandwidth import kv_bandwidth_factor
from scheduler.requirements import ROLES, ServiceRequirements
from scheduler.topology import Topology


def first_fit_placement(
    topology: Topology,
    wanted: dict[str, tuple[int, int]],
    requirements: dict[str, ServiceRequirements],
) -> dict[str, dict[str, Counter[str]]]:
    """Place ``wanted`` (prefill, decode) instances per service on an empty cluster.

    Returns
    -------
    dict
        service -> role -> instances per node id. What does not fit is left out.
    """
    free = {node.id: node.gpu_count for node in topology.nodes}
    placed: dict[str, dict[str, Counter[str]]] = {}
    for service in sorted(wanted, key=lambda s: (-requirements[s].priority, s)):
        placed[service] = {role: Counter() for role in ROLES}
        for role, count in zip(ROLES, wanted[service], strict=True):
            needs = requirements[service].role(role)
            for _ in range(count):
                node = next(
                    (
                        n
                        for gpu_type in needs.gpu_types
                        for n in topology.nodes
                        if n.gpu_type == gpu_type and free[n.id] >= needs.gpus_per_instance
                    ),
                    None,
                )
                if node is None:
                    break
                free[node.id] -= needs.gpus_per_instance
                placed[service][role][node.id] += 1
    return placed


def affinity_violations(
    topology: Topology,
    placed: dict[str, dict[str, Counter[str]]],
    requirements: dict[str, ServiceRequirements],
) -> int:
    """Instances outside the S1 or S2 (per the service's affinity) that holds most of its
    instances: how many would have to move for the service to form one Deployment Group."""
    outside = 0
    for service, roles in placed.items():
        affinity = requirements[service].affinity
        if affinity == "none":
            continue
        per_domain: Counter[str] = Counter()
        for nodes in roles.values():
            for node_id, instances in nodes.items():
                where = topology.location(node_id)
                per_domain[where.s1 if affinity == "s1" else where.s2] += instances
        outside += sum(per_domain.values()) - max(per_domain.values(), default=0)
    return outside


def mean_kv_bandwidth_factor(
    topology: Topology, placed: dict[str, dict[str, Counter[str]]]
) -> float:
    """KV bandwidth factor per service, averaged over services with both roles placed."""
    factors = [
        kv_bandwidth_factor(topology, roles["prefill"], roles["decode"])
        for roles in placed.values()
        if roles["prefill"] and roles["decode"]
    ]
    return sum(factors) / len(factors) if factors else 1.0
