"""KV-cache bandwidth between a group's prefill and decode instances, by how far apart they sit.

The paper reports that P->D KV-cache transfer loses about 20% of its bandwidth when it crosses
S2 switches (HeteroScale, arXiv 2508.19559, §5.4.2). This module is the one place those
factors live; the simulator scales its KV transfer rate by :func:`kv_bandwidth_factor`.

Factors (relative to transfer under one S1): same S1 1.0; same S2 1.0 (ours: the paper
gives no S1/S2 difference and treats one S2 as the fast domain); across S2 0.8.
"""

from __future__ import annotations

from collections import Counter

from scheduler.state import DeploymentGroup
from scheduler.topology import Topology

#: Bandwidth factor per P/D distance: "s1" (same S1), "s2" (same S2), "cross_s2".
KV_BANDWIDTH_FACTOR = {"s1": 1.0, "s2": 1.0, "cross_s2": 0.8}


def pair_distance(topology: Topology, prefill_node: str, decode_node: str) -> str:
    """``"s1"``, ``"s2"`` or ``"cross_s2"``: the smallest switch both nodes sit under."""
    a, b = topology.location(prefill_node), topology.location(decode_node)
    if a.s1 == b.s1:
        return "s1"
    return "s2" if a.s2 == b.s2 else "cross_s2"


def kv_bandwidth_factor(topology: Topology, prefill: Counter[str], decode: Counter[str]) -> float:
    """Mean KV bandwidth factor over every (prefill instance, decode instance) pair.

    Parameters
    ----------
    topology : Topology
    prefill, decode : Counter of str to int
        Instances per node id.

    Returns
    -------
    float
        In [0.8, 1.0]; 1.0 when a role is empty (no transfer). Pairs are weighted equally,
        as if every prefill instance sent to every decode instance alike.
    """
    pairs = sum(prefill.values()) * sum(decode.values())
    if pairs == 0:
        return 1.0
    total = sum(
        p * d * KV_BANDWIDTH_FACTOR[pair_distance(topology, pn, dn)]
        for pn, p in prefill.items()
        for dn, d in decode.items()
    )
    return total / pairs


def group_kv_bandwidth_factor(topology: Topology, group: DeploymentGroup) -> float:
    """:func:`kv_bandwidth_factor` of one Deployment Group's members."""
    roles: dict[str, Counter[str]] = {"prefill": Counter(), "decode": Counter()}
    for member in group.members:
        roles[member.role][member.node_id] += member.instances
    return kv_bandwidth_factor(topology, roles["prefill"], roles["decode"])
