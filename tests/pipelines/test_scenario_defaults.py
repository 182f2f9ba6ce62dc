"""The embedded default scenario is self-consistent: its topology can host its cluster."""

from collections import Counter

from pipelines.resources import ScenarioResource
from scheduler import load_topology
from simulator import default_cluster


def test_one_s2_of_the_default_topology_holds_the_whole_default_cluster():
    cluster = default_cluster()
    needed = Counter()
    for pool in (*cluster.prefill_pools, *cluster.decode_pools):
        needed[pool.gpu_type] += pool.tp * pool.count
    topology = load_topology(ScenarioResource().topology_path)
    per_s2: dict[str, Counter] = {}
    for node in topology.nodes:
        per_s2.setdefault(topology.location(node.id).s2, Counter())[node.gpu_type] += node.gpu_count
    assert any(all(gpus[t] >= n for t, n in needed.items()) for gpus in per_s2.values())
