"""The greedy against the exact ILP and against topology-blind first fit, on tiny clusters."""

from collections import Counter

import pytest

from scheduler import (
    PlacementState,
    ScaleRequest,
    generate_topology,
    outcomes_to_frame,
    place_cycle,
    plan_to_frame,
)
from scheduler.bandwidth import KV_BANDWIDTH_FACTOR, kv_bandwidth_factor
from scheduler.costs import placement_cost
from scheduler.exact import exact_placement
from scheduler.first_fit import affinity_violations, first_fit_placement
from scheduler.workload_generator import generate_services, generate_targets
from tests.scheduler.trees import build_tree, service


def tiny(seed):
    topology = generate_topology(seed, s2_count=2, s1_per_s2=2, nodes_per_s1=2)
    services = generate_services(seed, 3)
    return topology, services, generate_targets(seed, services, max_decode=3)


#: Greedy cost / ILP optimum - 1 per seed of ``tiny``, as measured (docs/scheduler.md, "Measured
#: figures"); a change of the greedy that places any of them worse fails here. With the stage
#: order alone (no second placement, no repair) they were 87.3, 0.244, 41.5 and 409.8; with
#: the pairwise repair before the order search, 0.0016, 0.2445, 0.0337 and 0.1232.
GAP_BOUND = {0: 0.0015, 1: 1e-6, 2: 0.0337, 3: 0.1231}


@pytest.mark.parametrize("seed", range(4))
def test_greedy_never_beats_the_exact_optimum_and_the_optimum_is_feasible(seed):
    topology, services, wanted = tiny(seed)
    requests = [
        ScaleRequest(name, role, count)
        for name, pair in wanted.items()
        for role, count in zip(("prefill", "decode"), pair, strict=True)
    ]
    result = place_cycle(topology, PlacementState.empty(), requests, services)
    greedy = placement_cost(
        plan_to_frame(result.records), outcomes_to_frame(result.outcomes), services
    )
    exact = exact_placement(topology, wanted, services)
    assert exact.optimal
    assert greedy["total_cost"] >= exact.total_cost - 1e-6
    assert greedy["total_cost"] / exact.total_cost - 1 <= GAP_BOUND[seed]
    assert exact.shortfall_gpus <= greedy["shortfall_gpus"]
    assert all(record.affinity_satisfied for record in result.records)
    # The optimum obeys capacity, affinity (by slot) and the balance rule.
    used, groups = Counter(), {}
    for (name, role, domain, slot, node_id), instances in exact.instances.items():
        used[node_id] += instances * services[name].role(role).gpus_per_instance
        where = topology.location(node_id)
        assert domain == {"s1": where.s1, "s2": where.s2, "none": "*"}[services[name].affinity]
        groups.setdefault((name, domain, slot), Counter())[role] += instances
    assert all(used[n.id] <= n.gpu_count for n in topology.nodes)
    for (name, _, _), counts in groups.items():
        assert services[name].is_balanced(counts["prefill"], counts["decode"])


def test_first_fit_splits_a_service_across_s2s_that_the_scheduler_keeps_together():
    # s2-a has room for one 8-GPU instance only; first fit puts prefill there, decode in s2-b.
    topology = build_tree({"s2-a": {"a0": ["H20"]}, "s2-b": {"b0": ["H20", "H20"]}})
    needs = {"chat": service(gpus=8)}
    blind = first_fit_placement(topology, {"chat": (1, 1)}, needs)
    assert affinity_violations(topology, blind, needs) == 1
    factor = kv_bandwidth_factor(topology, blind["chat"]["prefill"], blind["chat"]["decode"])
    assert factor == KV_BANDWIDTH_FACTOR["cross_s2"]
    requests = [ScaleRequest("chat", "prefill", 1), ScaleRequest("chat", "decode", 1)]
    result = place_cycle(topology, PlacementState.empty(), requests, needs)
    assert {record.s2 for record in result.records} == {"s2-b"}


def test_bandwidth_factor_weights_every_prefill_decode_pair_alike():
    topology = build_tree({"s2-a": {"a0": ["H20", "H20"], "a1": ["H20"]}, "s2-b": {"b0": ["H20"]}})
    # One prefill in a0; decoders: one in a0 (same S1), one in a1 (same S2), two in b0 (across).
    factor = kv_bandwidth_factor(
        topology, Counter({"a0-n0": 1}), Counter({"a0-n1": 1, "a1-n0": 1, "b0-n0": 2})
    )
    assert factor == pytest.approx((1.0 + 1.0 + 2 * 0.8) / 4)
    assert kv_bandwidth_factor(topology, Counter(), Counter({"a0-n0": 1})) == 1.0


def test_the_priority_ilp_serves_a_higher_priority_service_first_as_the_greedy_does():
    # 16 GPUs: vip wants 8 (two 4-GPU instances), batch 16 (two 8-GPU ones); both cannot fit.
    # Priority-blind, the optimum leaves vip short because batch's GPUs outweigh them.
    topology = build_tree({"x": {"x0": ["H20", "H20"]}})
    needs = {"vip": service(gpus=4, priority=5), "batch": service(gpus=8, priority=1)}
    wanted = {"vip": (1, 1), "batch": (1, 1)}
    blind = exact_placement(topology, wanted, needs)
    fair = exact_placement(topology, wanted, needs, service_priority=True)
    assert {k[0] for k in blind.instances} == {"batch"}
    assert {k[0] for k in fair.instances} == {"vip"} and fair.optimal
    requests = [ScaleRequest(n, r, 1) for n in wanted for r in ("prefill", "decode")]
    result = place_cycle(topology, PlacementState.empty(), requests, needs)
    greedy = placement_cost(
        plan_to_frame(result.records), outcomes_to_frame(result.outcomes), needs
    )
    assert greedy["total_cost"] == pytest.approx(fair.total_cost)
    assert greedy["total_cost"] > blind.total_cost
