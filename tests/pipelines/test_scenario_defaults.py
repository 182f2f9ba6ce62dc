"""The embedded default scenario is self-consistent: its topology can host its cluster, and its
fleet workload is ServeGen's days on the fleet's pools."""

from collections import Counter

import numpy as np

from pipelines.assets.policies import fleet_scenario, request_level_span
from pipelines.resources import ScenarioResource, StoreResource
from policies.fleet import fleet_cluster, servegen_scenario
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


def test_the_default_fleet_workload_is_servegens_on_the_fleet_pools(tmp_path):
    """Without a cluster file or ``fleet_from_store``, curation and the backtest run on
    ServeGen m-large's days and the request-level check on 07:00-08:00 of evaluation day 1."""
    scenario = ScenarioResource()
    fleet = fleet_scenario(scenario, StoreResource(db_path=str(tmp_path / "unused.duckdb")))
    expected = servegen_scenario()
    assert fleet.source == expected.source and fleet.cluster == fleet_cluster()
    assert np.array_equal(fleet.load.requests, expected.load.requests)
    assert request_level_span(fleet, scenario) == (7 * 86_400 + 7 * 3600.0, 3600.0)
    assert not (tmp_path / "unused.duckdb").exists()
