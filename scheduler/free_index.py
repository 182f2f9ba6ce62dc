"""Free GPUs of one cycle, indexed so placement never rescans the tree per instance.

Algorithm 4 picks, for every instance, the node with the best (GPU type rank, subgroup
priority, spare GPUs, id) among the nodes of one affinity domain. Scanning a domain's nodes for
every instance, and dry-running every domain for every candidate, is quadratic in the fleet:
too slow at 10,000 nodes (docs/scheduler.md, "Speed"). This index keeps, for every domain of
every affinity level, the nodes in *buckets* keyed by ``(gpu_type, priority, free GPUs)``,
each bucket a sorted list of node ids. Then:

- the best node for an instance is the smallest id of the first non-empty bucket in the
  role's preference order, a few dictionary look-ups;
- a dry-run fill only needs the bucket *sizes*, the domain's **profile**, not the node ids;
- domains with equal profiles give equal dry runs, so each distinct profile is evaluated once
  per candidate search, on the domain with the smallest id (the tie-break placement uses).

Only scale-out (and the roll-back of a trial scale-out, :meth:`FreeIndex.give`) changes the
index: GPUs freed by a scale-in return when the next cycle builds a new index from the new
state (paper §5.4.5).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter, defaultdict

from scheduler.domains import WHOLE_TOPOLOGY
from scheduler.requirements import AFFINITIES
from scheduler.subgroups import RdmaSubgroups
from scheduler.topology import Topology

#: (GPU type, subgroup priority, free GPUs): the class of nodes one bucket holds.
BucketKey = tuple[str, int, int]
#: A domain's profile: its non-empty buckets' keys and sizes, sorted, hashable.
Profile = tuple[tuple[BucketKey, int], ...]


class FreeIndex:
    """Free GPUs per node, bucketed per affinity domain.

    Parameters
    ----------
    topology : Topology
    subgroups : RdmaSubgroups
        Gives each node's priority (§5.4.3).
    used : Counter of str to int
        GPUs taken per node id at the start of the cycle.
    """

    def __init__(self, topology: Topology, subgroups: RdmaSubgroups, used: Counter[str]) -> None:
        self.free: dict[str, int] = {}
        #: node id -> (GPU type, priority, one domain per affinity level)
        self._where: dict[str, tuple[str, int, tuple[tuple[str, str], ...]]] = {}
        self._buckets: dict[tuple[str, str], dict[BucketKey, list[str]]] = defaultdict(dict)
        for node in topology.nodes:
            location = topology.location(node.id)
            domains = (("s1", location.s1), ("s2", location.s2), ("none", WHOLE_TOPOLOGY))
            priority = int(subgroups.priority_of(node.id))
            self.free[node.id] = node.gpu_count - used[node.id]
            self._where[node.id] = (node.gpu_type, priority, domains)
            for domain in domains:
                key = (node.gpu_type, priority, self.free[node.id])
                self._buckets[domain].setdefault(key, []).append(node.id)
        for buckets in self._buckets.values():
            for ids in buckets.values():
                ids.sort()
        self.max_free = max(node.gpu_count for node in topology.nodes)
        #: affinity level -> profile -> domains with that profile, sorted
        self._by_profile: dict[str, dict[Profile, list[str]]] = {a: {} for a in AFFINITIES}
        self._profile_of: dict[tuple[str, str], Profile] = {}
        #: affinity level -> domains whose profile changed since it was last read
        self._stale: dict[str, set[str]] = {a: set() for a in AFFINITIES}
        for affinity, domain in self._buckets:
            self._stale[affinity].add(domain)

    def profile(self, affinity: str, domain: str) -> Profile:
        """The bucket sizes of one domain."""
        if domain in self._stale[affinity]:
            self._refresh(affinity, domain)
        return self._profile_of[(affinity, domain)]

    def profiles(self, affinity: str) -> dict[Profile, list[str]]:
        """Every distinct profile of an affinity level, with the domains that have it (sorted)."""
        for domain in list(self._stale[affinity]):
            self._refresh(affinity, domain)
        return self._by_profile[affinity]

    def first_node(self, affinity: str, domain: str, keys: list[BucketKey]) -> str | None:
        """The smallest node id of the first non-empty bucket among ``keys``, in that order."""
        buckets = self._buckets[(affinity, domain)]
        for key in keys:
            ids = buckets.get(key)
            if ids:
                return ids[0]
        return None

    def offers(self, affinity: str) -> set[tuple[tuple[str, int], ...]]:
        """The distinct offers of an affinity level's domains: each GPU type a domain has, with
        the lowest subgroup priority of its nodes of that type (whatever their free GPUs)."""
        offers = set()
        for (level, _), buckets in self._buckets.items():
            if level == affinity:
                lowest: dict[str, int] = {}
                for gpu_type, priority, _ in buckets:
                    lowest[gpu_type] = min(lowest.get(gpu_type, priority), priority)
                offers.add(tuple(sorted(lowest.items())))
        return offers

    def take(self, node_id: str, gpus: int) -> None:
        """Reserve GPUs on a node for the rest of the cycle (virtual allocation, §5.4.5)."""
        if gpus > self.free[node_id]:
            raise ValueError(
                f"node {node_id} has {self.free[node_id]} free GPUs, cannot take {gpus}"
            )
        self._move(node_id, -gpus)

    def give(self, node_id: str, gpus: int) -> None:
        """Undo a :meth:`take` of this cycle, when a trial placement is rolled back.

        Only GPUs reserved in this cycle come back this way; GPUs freed by a scale-in never
        do (they return when the next cycle builds a new index, §5.4.5).
        """
        self._move(node_id, gpus)

    def _move(self, node_id: str, delta: int) -> None:
        gpu_type, priority, domains = self._where[node_id]
        was = self.free[node_id]
        now = was + delta
        self.free[node_id] = now
        for domain in domains:
            buckets = self._buckets[domain]
            ids = buckets[(gpu_type, priority, was)]
            del ids[bisect_left(ids, node_id)]
            if not ids:
                del buckets[(gpu_type, priority, was)]
            insort(buckets.setdefault((gpu_type, priority, now), []), node_id)
            self._stale[domain[0]].add(domain[1])

    def _refresh(self, affinity: str, domain: str) -> None:
        self._stale[affinity].discard(domain)
        key = (affinity, domain)
        profile = tuple(sorted((k, len(ids)) for k, ids in self._buckets[key].items()))
        old = self._profile_of.get(key)
        if old == profile:
            return
        by_profile = self._by_profile[affinity]
        if old is not None:
            domains = by_profile[old]
            del domains[bisect_left(domains, domain)]
            if not domains:
                del by_profile[old]
        insort(by_profile.setdefault(profile, []), domain)
        self._profile_of[key] = profile


def total_free(profile: Profile) -> int:
    """Free GPUs of every node of a domain, whatever their type or priority."""
    return sum(free * count for (_, _, free), count in profile)
