"""The request-level plant runs the same loop, and fast mode agrees with it on the same span."""

import pytest

from policies.baselines.static_peak import StaticPeak
from policies.curation import curate
from policies.fleet import servegen_scenario
from policies.heteroscale import HeteroScale
from policies.modes import compare_modes, placement_requirements
from policies.request_plant import RequestPlant
from scheduler import DEFAULT_TOPOLOGY_PATH, load_topology
from simulator import ClusterSpec, PoolSpec

GRID = {"utilisation_target": (0.8,), "scale_in_cooldown_s": (600.0,), "scale_in_step": (0.1,)}
BUILDERS = {
    "heteroscale": lambda c, load: HeteroScale(c.inputs, c.config),
    "static_peak": lambda c, load: StaticPeak(c.inputs),
}


@pytest.fixture(scope="module")
def scenario():
    return servegen_scenario(days=2, curation_days=1, rate_scale=0.05)


@pytest.fixture(scope="module")
def compared(scenario):
    curation = curate(scenario.curation, scenario.cluster, scenario.slo, grid=GRID)
    # 07:00-07:30 of the evaluation day: the morning ramp.
    return compare_modes(scenario, curation, BUILDERS, first_s=86_400 + 7 * 3600, span_s=1800)


def test_both_modes_run_every_policy_on_the_same_requests(compared):
    assert compared.select("policy", "mode").rows() == [
        ("heteroscale", "fast"),
        ("heteroscale", "request"),
        ("static_peak", "fast"),
        ("static_peak", "request"),
    ]
    assert compared["requests"].n_unique() == 1 and compared["requests"][0] > 10_000
    assert compared.filter(compared["mode"] == "fast")["gpu_hours_gap"].is_null().all()


def test_fast_mode_agrees_with_request_level(compared):
    request = {
        row["policy"]: row for row in compared.filter(compared["mode"] == "request").to_dicts()
    }
    assert abs(request["static_peak"]["gpu_hours_gap"]) < 0.01
    assert abs(request["heteroscale"]["gpu_hours_gap"]) < 0.10
    assert abs(request["heteroscale"]["avg_gpu_util_gap"]) < 0.05
    assert request["heteroscale"]["tbt_attainment"] >= 0.99


def test_placement_tolerates_the_policys_split():
    needs = placement_requirements(("prefill", "L20", 4), ("decode", "H20", 4), 9.0)
    assert needs.ratio_tolerance == 5.0 and needs.affinity == "s2"


def test_a_topology_that_cannot_host_the_cluster_is_refused(scenario):
    big = ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec("prefill", "L20", 4, 200),),
        decode_pools=(PoolSpec("decode", "H20", 4, 20),),
    )
    with pytest.raises(ValueError, match="cannot host the starting cluster"):
        RequestPlant(
            scenario.requests(0.0, 60.0).requests,
            big,
            service="chat",
            start=scenario.load.start,
            topology=load_topology(DEFAULT_TOPOLOGY_PATH),
            requirements=placement_requirements(("prefill", "L20", 4), ("decode", "H20", 4), 10.0),
        )
