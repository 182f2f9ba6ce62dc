"""Invariants of place_cycle over random topologies, services and request sequences."""

import math
from collections import Counter
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import (
    AFFINITIES,
    PlacementState,
    RoleRequirements,
    ScaleRequest,
    ServiceRequirements,
    generate_topology,
    place_cycle,
    placement,
)
from tests.scheduler.naive_placement import NaiveCycle

GPU_TYPES = ("H20", "L20")


@st.composite
def role_requirements(draw) -> RoleRequirements:
    preferred = draw(st.sampled_from(GPU_TYPES))
    fallback = draw(st.sampled_from([(), tuple(t for t in GPU_TYPES if t != preferred)]))
    return RoleRequirements(preferred, fallback, draw(st.sampled_from([1, 2, 4, 8])))


@st.composite
def service_requirements(draw) -> ServiceRequirements:
    return ServiceRequirements(
        draw(role_requirements()),
        draw(role_requirements()),
        affinity=draw(st.sampled_from(AFFINITIES)),
        pd_ratio=draw(st.sampled_from([0.28, 0.5, 1.0, 9 / 7, 2.0])),
        priority=draw(st.integers(0, 2)),
        ratio_tolerance=draw(st.sampled_from([0.5, 1.0, 2.0])),
    )


@st.composite
def scenarios(draw):
    topology = generate_topology(
        draw(st.integers(0, 10_000)),
        s2_count=draw(st.integers(1, 3)),
        s1_per_s2=draw(st.integers(1, 3)),
        nodes_per_s1=draw(st.integers(1, 3)),
        gpus_per_node=draw(st.sampled_from([4, 8])),
    )
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    requirements = {name: draw(service_requirements()) for name in names}
    cycles = draw(
        st.lists(st.lists(target(names, requirements), max_size=3), min_size=1, max_size=4)
    )
    return topology, requirements, cycles


def target(names, requirements):
    """A (service, prefill, decode) target: mostly the policy's ceil split, sometimes anything."""

    @st.composite
    def draw_target(draw):
        name = draw(st.sampled_from(names))
        decode = draw(st.integers(0, 6))
        split = math.ceil(requirements[name].pd_ratio * decode - 1e-9)
        prefill = draw(st.one_of(st.just(split), st.integers(0, 6)))
        return name, prefill, decode

    return draw_target()


def run(topology, requirements, cycles):
    """Place each cycle's targets as deltas against the state reached so far."""
    state, results = PlacementState.empty(), []
    for cycle, targets in enumerate(cycles):
        wanted = {name: (prefill, decode) for name, prefill, decode in targets}
        requests = [
            ScaleRequest(name, role, count - state.instances(name, role))
            for name, counts in wanted.items()
            for role, count in zip(("prefill", "decode"), counts, strict=True)
        ]
        result = place_cycle(topology, state, requests, requirements, cycle=cycle)
        results.append((state, result))
        state = result.state
    return results


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_never_overallocates_and_never_reuses_freed_gpus_in_the_cycle(scenario):
    topology = scenario[0]
    for before, result in run(*scenario):
        used = Counter()
        for group in result.state.groups:
            for member in group.members:
                used[member.node_id] += member.instances * member.gpus_per_instance
        assert all(used[n.id] <= n.gpu_count for n in topology.nodes)
        free_at_start = Counter({n.id: n.gpu_count for n in topology.nodes})
        free_at_start.subtract(before.used_gpus())
        added = Counter()
        for record in result.records:
            if record.action == "scale_out":
                added[record.node_id] += record.gpus
        assert all(added[node] <= free_at_start[node] for node in added)


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_every_group_stays_inside_one_affinity_domain(scenario):
    topology = scenario[0]
    for _, result in run(*scenario):
        assert all(record.affinity_satisfied for record in result.records)
        for group in result.state.groups:
            locations = [topology.location(m.node_id) for m in group.members]
            if group.affinity == "s2":
                assert {where.s2 for where in locations} == {group.domain}
            elif group.affinity == "s1":
                assert {where.s1 for where in locations} == {group.domain}


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_every_group_ends_each_cycle_with_both_roles_within_ratio_tolerance(scenario):
    requirements = scenario[1]
    for _, result in run(*scenario):
        for group in result.state.groups:
            needs = requirements[group.service]
            prefill, decode = group.instances("prefill"), group.instances("decode")
            assert prefill >= 1 and decode >= 1
            assert abs(prefill - needs.pd_ratio * decode) <= needs.ratio_tolerance + 1e-9


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_outcomes_account_for_every_instance_and_never_exceed_the_request(scenario):
    for before, result in run(*scenario):
        for outcome in result.outcomes:
            assert 0 <= outcome.placed_instances <= outcome.requested_instances
            sign = 1 if outcome.action == "scale_out" else -1
            now = result.state.instances(outcome.service, outcome.role)
            was = before.instances(outcome.service, outcome.role)
            assert now - was == sign * outcome.placed_instances


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_same_input_gives_the_same_placement(scenario):
    assert run(*scenario) == run(*scenario)


def run_naive(topology, requirements, cycles):
    """``run`` with the rescanning scale-out of :mod:`tests.scheduler.naive_placement`."""
    with patch.object(placement, "_Cycle", NaiveCycle):
        return run(topology, requirements, cycles)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_indexed_scale_out_places_exactly_as_rescanning_every_node(scenario):
    # The free-GPU index and the per-profile search are speed-ups only: same groups, same
    # nodes, same records, same outcomes as the node-by-node scan.
    assert run(*scenario) == run_naive(*scenario)
