"""Affinity domains: the parts of the tree one Deployment Group may occupy (paper §5.4.2).

A group of a service with affinity "s2" lives under one S2 switch, so its domains are the S2
ids; "s1" gives the S1 ids; "none" has a single domain, the whole topology, named
:data:`WHOLE_TOPOLOGY` (ours: the paper relaxes such services "to the whole cluster").
"""

from __future__ import annotations

from scheduler.topology import Node, Topology

#: The one domain of services without an affinity requirement.
WHOLE_TOPOLOGY = "*"


def affinity_domains(topology: Topology, affinity: str) -> tuple[str, ...]:
    """Every domain a new group of this affinity could be created in, in document order."""
    if affinity == "s2":
        return tuple(b.id for b in topology.big_pods)
    if affinity == "s1":
        return tuple(m.id for m in topology.mini_pods)
    return (WHOLE_TOPOLOGY,)


def domain_nodes(topology: Topology, affinity: str, domain: str) -> tuple[Node, ...]:
    """The nodes a group with this affinity and domain may use."""
    if affinity == "s2":
        return topology.big_pod(domain).nodes
    if affinity == "s1":
        return topology.mini_pod(domain).nodes
    return topology.nodes


def node_domain(topology: Topology, affinity: str, node_id: str) -> str:
    """The domain of this affinity that contains the node."""
    if affinity == "s2":
        return topology.location(node_id).s2
    if affinity == "s1":
        return topology.location(node_id).s1
    return WHOLE_TOPOLOGY
