"""The placement checks name what they found: the placements outside their group's affinity
domain (service, role, group, node, cycle), and the first cycle the topology fell short in."""

import polars as pl

from pipelines.assets.scheduler import (
    placement_plan_places_every_instance,
    placement_plan_respects_affinity,
)
from pipelines.resources import ScenarioResource, StoreResource

PLAN = pl.DataFrame(
    {
        "cycle": [0, 0, 3],
        "service": ["chat"] * 3,
        "role": ["prefill", "decode", "decode"],
        "deployment_group": ["dg-0", "dg-0", "dg-1"],
        "node_id": ["n1", "n2", "n9"],
        "affinity_satisfied": [True, True, False],
    }
)
OUTCOMES = pl.DataFrame(
    {
        "cycle": [0, 2, 5],
        "service": ["chat"] * 3,
        "role": ["prefill", "decode", "prefill"],
        "shortfall_instances": [0, 2, 1],
    }
)


def resources(tmp_path) -> dict:
    store = StoreResource(db_path=str(tmp_path / "store.duckdb"))
    store.write("placement_plan", PLAN, ("service",))
    store.write("placement_outcomes", OUTCOMES, ("service",))
    return {"scenario": ScenarioResource(), "store": store}


def test_a_placement_outside_its_affinity_domain_is_named(tmp_path):
    result = placement_plan_respects_affinity(**resources(tmp_path))
    assert not result.passed
    assert result.description == "chat decode of dg-1 on n9 in cycle 3"


def test_a_shortfall_names_its_first_cycle(tmp_path):
    result = placement_plan_places_every_instance(**resources(tmp_path))
    assert not result.passed
    assert (
        result.description
        == "3 instances not placed in 2 cycles, the first 2 chat decode in cycle 2"
    )
