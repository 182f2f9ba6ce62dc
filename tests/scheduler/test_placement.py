"""Algorithm 4 behaviour: where scale-outs go, what scale-ins free, what a cycle reserves."""

from unittest.mock import patch

import pytest

from scheduler import (
    PLAN_SCHEMA,
    SMALL_TOPOLOGY_PATH,
    DeploymentGroup,
    Member,
    PlacementState,
    RoleRequirements,
    ScaleRequest,
    ServiceRequirements,
    load_topology,
    outcomes_to_frame,
    place_cycle,
    plan_to_frame,
)
from scheduler.repair import RepairingCycle
from tests.scheduler.trees import build_tree, service

SMALL = load_topology(SMALL_TOPOLOGY_PATH)


def both(name: str, prefill: int, decode: int) -> list[ScaleRequest]:
    return [ScaleRequest(name, "prefill", prefill), ScaleRequest(name, "decode", decode)]


def group(gid, name, affinity, domain, *members) -> DeploymentGroup:
    """A group from ``(role, node, gpus per instance, instances)`` tuples."""
    return DeploymentGroup(gid, name, affinity, domain, tuple(Member(*m) for m in members))


def placed(result) -> dict[tuple[str, str], int]:
    return {(o.service, o.role): o.placed_instances for o in result.outcomes}


def test_homogeneous_service_opens_a_new_group_in_a_low_pool_rather_than_grow_a_medium_one():
    # chat already runs in s2-b (medium: its S2 mixes L20 and H20) with free H20 beside it.
    state = PlacementState(
        (
            group(
                "chat/dg00001",
                "chat",
                "s2",
                "s2-b",
                ("prefill", "b1-n0", 4, 1),
                ("decode", "b1-n0", 4, 1),
            ),
        ),
        groups_created=1,
    )
    result = place_cycle(SMALL, state, both("chat", 2, 2), {"chat": service(gpus=4)})
    plan = plan_to_frame(result.records)
    assert plan["deployment_group"].unique().to_list() == ["chat/dg00002"]
    assert set(plan["s2"]) == {"s2-a"}
    assert set(plan["subgroup_priority"]) == {"low"}
    assert placed(result) == {("chat", "prefill"): 2, ("chat", "decode"): 2}


def test_service_without_affinity_stays_on_low_priority_nodes():
    result = place_cycle(
        SMALL, PlacementState.empty(), both("batch", 3, 3), {"batch": service(affinity="none")}
    )
    plan = plan_to_frame(result.records)
    assert set(plan["subgroup_priority"]) == {"low"}
    assert plan["instances"].sum() == 6


def test_existing_group_grows_when_the_low_pool_is_full():
    # s2-a's twelve H20 nodes are taken by another service; chat's medium group may grow.
    filler = group(
        "filler/dg00001",
        "filler",
        "s2",
        "s2-a",
        *[("prefill", f"a{j}-n{k}", 8, 1) for j in range(3) for k in range(2)],
        *[("decode", f"a{j}-n{k}", 8, 1) for j in range(3) for k in range(2, 4)],
    )
    chat = group(
        "chat/dg00002", "chat", "s2", "s2-b", ("prefill", "b1-n0", 8, 1), ("decode", "b1-n1", 8, 1)
    )
    state = PlacementState((filler, chat), groups_created=2)
    result = place_cycle(SMALL, state, both("chat", 1, 1), {"chat": service()})
    plan = plan_to_frame(result.records)
    assert set(plan["deployment_group"]) == {"chat/dg00002"}
    assert set(plan["node_id"]) == {"b1-n2", "b1-n3"}  # the medium H20s, not the high s1-b2
    assert set(plan["subgroup_priority"]) == {"medium"}


def test_heterogeneous_s1_affinity_service_lands_in_an_s1_heterogeneous_subgroup():
    needs = {"vlm": service(prefill="L20", decode="H20", affinity="s1")}
    result = place_cycle(SMALL, PlacementState.empty(), both("vlm", 2, 2), needs)
    plan = plan_to_frame(result.records)
    assert set(plan["s1"]) == {"s1-b2"}
    assert set(plan["subgroup_priority"]) == {"high"}
    roles = dict(plan.select("role", "gpu_type").unique().sort("role").iter_rows())
    assert roles == {"decode": "H20", "prefill": "L20"}


def test_heterogeneous_s2_affinity_service_spares_the_high_subgroup():
    needs = {"vlm": service(prefill="L20", decode="H20", affinity="s2")}
    result = place_cycle(SMALL, PlacementState.empty(), both("vlm", 4, 4), needs)
    plan = plan_to_frame(result.records)
    assert set(plan["s1"]) == {"s1-b0", "s1-b1"}
    assert set(plan["subgroup_priority"]) == {"medium"}


def test_fallback_type_only_when_the_preferred_one_is_exhausted():
    tree = build_tree({"x": {"x0": ["L20", "H20", "H20"]}})
    needs = {"svc": service(prefill="L20", prefill_fallback=("H20",), decode="H20")}
    result = place_cycle(tree, PlacementState.empty(), both("svc", 1, 1), needs)
    assert {(r.role, r.gpu_type) for r in result.records} == {("prefill", "L20"), ("decode", "H20")}
    result = place_cycle(tree, result.state, both("svc", 1, 0), needs)
    assert [(r.role, r.gpu_type) for r in result.records] == [("prefill", "H20")]


def test_virtual_allocation_keeps_reserved_gpus_from_a_lower_priority_service():
    tree = build_tree({"x": {"x0": ["H20", "H20"]}})
    needs = {"vip": service(priority=10), "batch": service(priority=1)}
    requests = both("batch", 1, 1) + both("vip", 1, 1)  # order of the list does not matter
    result = place_cycle(tree, PlacementState.empty(), requests, needs)
    outcomes = outcomes_to_frame(result.outcomes)
    assert outcomes["service"].to_list() == ["vip", "vip", "batch", "batch"]
    assert outcomes["shortfall_instances"].to_list() == [0, 0, 1, 1]
    assert {r.service for r in result.records} == {"vip"}


def test_scale_in_frees_the_highest_priority_group_first():
    state = PlacementState(
        (
            group(
                "svc/dg1",
                "svc",
                "s2",
                "s2-a",
                ("prefill", "a0-n0", 8, 1),
                ("decode", "a0-n1", 8, 1),
            ),
            group(
                "svc/dg2",
                "svc",
                "s2",
                "s2-b",
                ("prefill", "b2-n2", 8, 1),
                ("decode", "b2-n3", 8, 1),
            ),
            group(
                "svc/dg3",
                "svc",
                "s2",
                "s2-b",
                ("prefill", "b1-n0", 8, 1),
                ("decode", "b1-n1", 8, 1),
            ),
        ),
        groups_created=3,
    )
    result = place_cycle(SMALL, state, both("svc", -2, -2), {"svc": service()})
    assert [g.id for g in result.state.groups] == ["svc/dg1"]
    order = [(r.deployment_group, r.subgroup_priority) for r in result.records]
    assert order == [("svc/dg2", "high")] * 2 + [("svc/dg3", "medium")] * 2
    assert all(r.action == "scale_in" for r in result.records)


def test_gpus_freed_by_scale_in_wait_for_the_next_cycle():
    tree = build_tree({"x": {"x0": ["H20", "H20"]}})
    needs = {"old": service(priority=5), "new": service(priority=1)}
    first = place_cycle(tree, PlacementState.empty(), both("old", 1, 1), needs, cycle=0)
    second = place_cycle(tree, first.state, both("old", -1, -1) + both("new", 1, 1), needs, cycle=1)
    assert placed(second) == {
        ("old", "prefill"): 1,
        ("old", "decode"): 1,
        ("new", "prefill"): 0,
        ("new", "decode"): 0,
    }
    third = place_cycle(tree, second.state, both("new", 1, 1), needs, cycle=2)
    assert placed(third) == {("new", "prefill"): 1, ("new", "decode"): 1}


def test_a_lone_role_request_is_placed_only_within_ratio_tolerance():
    needs = {"svc": service(pd_ratio=1.0, gpus=1)}
    first = place_cycle(SMALL, PlacementState.empty(), both("svc", 2, 2), needs)
    second = place_cycle(SMALL, first.state, [ScaleRequest("svc", "prefill", 3)], needs)
    (outcome,) = second.outcomes
    assert (outcome.placed_instances, outcome.shortfall_instances) == (1, 2)
    (only,) = second.state.groups
    assert (only.instances("prefill"), only.instances("decode")) == (3, 2)


def test_no_new_group_is_opened_with_only_one_role():
    tree = build_tree({"x": {"x0": ["H20"]}, "y": {"y0": ["H20"]}}, gpus_per_node=2)
    needs = {"svc": service(gpus=1)}
    result = place_cycle(tree, PlacementState.empty(), both("svc", 3, 3), needs)
    assert placed(result) == {("svc", "prefill"): 2, ("svc", "decode"): 2}
    assert sorted(g.domain for g in result.state.groups) == ["x", "y"]


def test_a_full_cluster_reports_shortfall_and_never_overfills():
    needs = {"big": service(prefill_fallback=("L20",), decode_fallback=("L20",))}
    result = place_cycle(SMALL, PlacementState.empty(), both("big", 20, 20), needs)
    assert sum(result.state.used_gpus().values()) == SMALL.total_gpus
    assert sum(o.placed_instances for o in result.outcomes) == 24
    assert sum(o.shortfall_instances for o in result.outcomes) == 16


def test_plan_frame_has_the_documented_schema_even_when_empty():
    assert plan_to_frame([]).schema == PLAN_SCHEMA
    result = place_cycle(SMALL, PlacementState.empty(), both("svc", 1, 1), {"svc": service()})
    frame = plan_to_frame(result.records)
    assert frame.schema == PLAN_SCHEMA
    assert frame["affinity_satisfied"].all()


def test_bad_requests_and_states_are_refused():
    needs = {"svc": service()}
    with pytest.raises(ValueError, match="no ServiceRequirements for service 'other'"):
        place_cycle(SMALL, PlacementState.empty(), both("other", 1, 1), needs)
    with pytest.raises(ValueError, match="requested twice"):
        place_cycle(SMALL, PlacementState.empty(), both("svc", 1, 1) * 2, needs)
    with pytest.raises(ValueError, match="role must be one of"):
        ScaleRequest("svc", "colocated", 1)
    crowded = PlacementState(
        (group("svc/dg1", "svc", "s2", "s2-a", ("prefill", "a0-n0", 8, 2)),), groups_created=1
    )
    with pytest.raises(ValueError, match="node a0-n0 holds 16 GPUs but has 8"):
        place_cycle(SMALL, crowded, [], needs)
    astray = PlacementState(
        (group("svc/dg1", "svc", "s2", "s2-a", ("prefill", "b0-n0", 8, 1)),), groups_created=1
    )
    with pytest.raises(ValueError, match="outside its s2 domain s2-a"):
        place_cycle(SMALL, astray, [], needs)


def test_a_group_lacking_a_role_takes_it_before_filling_up_with_the_other():
    tree = build_tree({"x": {"m": ["H20", "H20"]}})
    needs = {
        "svc": ServiceRequirements(
            RoleRequirements("H20", gpus_per_instance=1),
            RoleRequirements("H20", gpus_per_instance=8),
            affinity="s1",
            pd_ratio=0.28,
        )
    }
    result = place_cycle(tree, PlacementState.empty(), both("svc", 1, 2), needs)
    assert placed(result) == {("svc", "prefill"): 1, ("svc", "decode"): 1}


def test_growing_a_group_does_not_strand_the_rest_of_the_request():
    # a has room for one more decoder and one more prefill; b for a whole (1, 2) group. Taking
    # both into a would leave (0P, 2D), which no new group can hold.
    tree = build_tree({"x": {"a": ["H20"] * 5, "b": ["H20"] * 4}})
    needs = {
        "svc": ServiceRequirements(
            RoleRequirements("H20", gpus_per_instance=1),
            RoleRequirements("H20", gpus_per_instance=8),
            affinity="s1",
            pd_ratio=0.28,
        )
    }
    running = group(
        "svc/dg1",
        "svc",
        "s1",
        "a",
        ("prefill", "a-n0", 1, 1),
        *[("decode", f"a-n{k}", 8, 1) for k in (1, 2, 3)],
    )
    result = place_cycle(tree, PlacementState((running,), 1), both("svc", 1, 3), needs)
    assert placed(result) == {("svc", "prefill"): 1, ("svc", "decode"): 3}
    sizes = {g.domain: (g.instances("prefill"), g.instances("decode")) for g in result.state.groups}
    assert sizes == {"a": (1, 4), "b": (1, 2)}


def test_a_stranding_fill_is_deferred_when_a_second_group_in_a_pricier_pool_costs_less():
    # Medium s2 "m" holds 2P4D (four H20 decoders of 8 GPUs); the stage order would then push
    # the last prefill into that group and its two decoders onto fallback L20 there. Deferring
    # that fill opens a second group (1P2D) in the high pool "h" on the preferred types.
    tree = build_tree({"m": {"m0": ["L20"], "m1": ["H20"] * 4}, "h": {"h0": ["L20", "H20", "H20"]}})
    needs = {
        "svc": ServiceRequirements(
            RoleRequirements("L20", ("H20",), gpus_per_instance=1),
            RoleRequirements("H20", ("L20",), gpus_per_instance=8),
            pd_ratio=0.5,
        )
    }
    result = place_cycle(tree, PlacementState.empty(), both("svc", 3, 6), needs)
    assert placed(result) == {("svc", "prefill"): 3, ("svc", "decode"): 6}
    assert {(r.role, r.gpu_type) for r in result.records} == {("prefill", "L20"), ("decode", "H20")}
    sizes = {g.domain: (g.instances("prefill"), g.instances("decode")) for g in result.state.groups}
    assert sizes == {"m": (2, 4), "h": (1, 2)}


def test_repair_moves_a_flexible_service_to_its_fallback_so_an_inflexible_one_fits():
    tree = build_tree({"x": {"x0": ["L20", "L20", "H20", "H20"]}})
    needs = {
        "vip": service(
            "L20", "L20", prefill_fallback=("H20",), decode_fallback=("H20",), priority=5
        ),
        "batch": service("L20", "L20"),
    }
    result = place_cycle(
        tree, PlacementState.empty(), both("vip", 1, 1) + both("batch", 1, 1), needs
    )
    assert all(o.shortfall_instances == 0 for o in result.outcomes)
    types = {(r.service, r.gpu_type) for r in result.records}
    assert types == {("vip", "H20"), ("batch", "L20")}


def test_repair_never_makes_a_higher_priority_service_short():
    tree = build_tree({"x": {"x0": ["L20", "L20", "H20", "H20"]}})
    needs = {"vip": service("L20", "L20", priority=5), "batch": service("L20", "L20")}
    result = place_cycle(
        tree, PlacementState.empty(), both("vip", 1, 1) + both("batch", 1, 1), needs
    )
    assert placed(result) == {
        ("vip", "prefill"): 1,
        ("vip", "decode"): 1,
        ("batch", "prefill"): 0,
        ("batch", "decode"): 0,
    }


def test_repair_has_earlier_services_yield_a_gpu_type_when_no_reorder_helps():
    # vip (first) takes both L20 nodes; both prefills run only on L20. Placing batch first
    # leaves vip's prefill short (batch's decode takes the other L20), so no reorder helps;
    # vip's decode yielding L20 (it accepts H20) places both.
    tree = build_tree({"x": {"x0": ["L20", "L20", "H20", "H20"]}})
    needs = {
        "vip": service("L20", "L20", decode_fallback=("H20",), priority=5),
        "batch": service("L20", "L20", decode_fallback=("H20",)),
    }
    result = place_cycle(
        tree, PlacementState.empty(), both("vip", 1, 1) + both("batch", 1, 1), needs
    )
    assert all(o.shortfall_instances == 0 for o in result.outcomes)
    types = {(r.service, r.role): r.gpu_type for r in result.records}
    assert types == {
        ("vip", "prefill"): "L20",
        ("vip", "decode"): "H20",
        ("batch", "prefill"): "L20",
        ("batch", "decode"): "H20",
    }


def test_repair_runs_no_trial_when_every_service_is_at_its_least_cost():
    # Heterogeneous P/D with S1 affinity can only run in the mixed S1, a high pool: that is
    # its least cost (scheduler.least_cost), so the repair has nothing to try.
    tree = build_tree({"a": {"a0": ["H20", "H20"]}, "b": {"b0": ["L20", "H20"]}})
    needs = {"het": service("L20", "H20", affinity="s1"), "hom": service(affinity="s1")}
    with patch.object(RepairingCycle, "_try_order", side_effect=AssertionError("trial run")):
        result = place_cycle(
            tree, PlacementState.empty(), both("het", 1, 1) + both("hom", 1, 1), needs
        )
    assert {(r.service, r.s1) for r in result.records} == {("het", "b0"), ("hom", "a0")}
