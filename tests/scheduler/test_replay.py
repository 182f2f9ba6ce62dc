"""Replaying per-cycle targets: differencing against the reached state, cycle after cycle."""

from datetime import UTC, datetime

import polars as pl
import pytest

from scheduler import (
    INSTANCES_SCHEMA,
    OUTCOME_SCHEMA,
    PLAN_SCHEMA,
    SMALL_TOPOLOGY_PATH,
    instance_hours,
    load_topology,
    replay_targets,
)
from tests.scheduler.trees import build_tree, service


def targets(*rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["cycle", "service", "target_prefill", "target_decode"], orient="row"
    )


def test_targets_become_deltas_and_the_plan_concatenates_the_cycles():
    result = replay_targets(
        load_topology(SMALL_TOPOLOGY_PATH),
        targets((2, "chat", 1, 1), (0, "chat", 2, 2), (1, "chat", 4, 4)),  # any row order
        {"chat": service()},
    )
    assert result.plan.schema == PLAN_SCHEMA
    assert result.outcomes.schema == OUTCOME_SCHEMA
    assert result.instances.schema == INSTANCES_SCHEMA
    assert result.instances.rows() == [
        (0, "chat", 2, 2, 1),
        (1, "chat", 4, 4, 1),
        (2, "chat", 1, 1, 1),
    ]
    moves = result.outcomes.select("cycle", "role", "action", "requested_instances").rows()
    assert moves == [
        (0, "prefill", "scale_out", 2),
        (0, "decode", "scale_out", 2),
        (1, "prefill", "scale_out", 2),
        (1, "decode", "scale_out", 2),
        (2, "prefill", "scale_in", 3),
        (2, "decode", "scale_in", 3),
    ]
    per_cycle = result.plan.group_by("cycle", "action").agg(pl.col("instances").sum()).sort("cycle")
    assert per_cycle.rows() == [(0, "scale_out", 4), (1, "scale_out", 4), (2, "scale_in", 6)]
    assert result.state.instances("chat", "prefill") == 1


def test_a_shortfall_is_asked_for_again_and_placed_once_gpus_are_free():
    tree = build_tree({"x": {"x0": ["H20"] * 4}})
    needs = {"vip": service(priority=5), "batch": service(priority=1)}
    result = replay_targets(
        tree,
        targets(
            (0, "vip", 1, 1),
            (0, "batch", 2, 2),
            (1, "vip", 0, 0),
            (1, "batch", 2, 2),
            (2, "batch", 2, 2),
        ),
        needs,
    )
    batch = result.instances.filter(pl.col("service") == "batch")
    assert batch.select("prefill_instances", "decode_instances").rows() == [(1, 1), (1, 1), (2, 2)]
    asked = result.outcomes.filter(service="batch", role="prefill")
    assert asked.select("cycle", "requested_instances", "shortfall_instances").rows() == [
        (0, 2, 1),
        (1, 1, 1),  # vip's freed GPUs wait for the next cycle
        (2, 1, 0),
    ]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (targets((0, "chat", 1, 1)).drop("cycle"), "lack column"),
        (targets((0, "chat", 1, 1), (0, "chat", 2, 2)), "repeat a \\(cycle, service\\)"),
        (targets((0, "chat", -1, 1)), "negative targets"),
        (targets((0, "other", 1, 1)), "no ServiceRequirements for service\\(s\\) \\['other'\\]"),
        (targets((0, "chat", None, 1)), "nulls in \\['target_prefill'\\]"),
        (targets((0, "chat", 1.0, 1)), "target_prefill must be integers"),
    ],
)
def test_bad_targets_are_refused(frame, message):
    with pytest.raises(ValueError, match=message):
        replay_targets(load_topology(SMALL_TOPOLOGY_PATH), frame, {"chat": service()})


def test_instance_hours_weigh_what_ran_against_what_was_asked():
    """One decode removal kept back in the first hour runs one decode instance-hour more than
    the policy asked; the last decision starts no span."""
    at = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 1, 3)]
    decisions = pl.DataFrame(
        {
            "ts": at,
            "service": ["svc"] * 3,
            "current_prefill": [2, 2, 4],
            "current_decode": [5, 3, 3],
            "next_prefill": [2, 4, 4],
            "next_decode": [3, 3, 2],
        }
    )
    outcomes = pl.DataFrame(
        {
            "cycle": [0, 0, 1, 2, 2, 3],
            "service": ["svc"] * 6,
            "role": ["prefill", "decode", "decode", "prefill", "decode", "decode"],
            "action": ["scale_out", "scale_out", "scale_in", "scale_out", "scale_in", "scale_in"],
            "placed_instances": [2, 5, 1, 2, 1, 1],
        }
    )
    hours = instance_hours(decisions, outcomes)
    assert hours.to_dicts() == [
        {
            "service": "svc",
            "role": "decode",
            "asked_instance_hours": 9.0,
            "placed_instance_hours": 10.0,
        },
        {
            "service": "svc",
            "role": "prefill",
            "asked_instance_hours": 10.0,
            "placed_instance_hours": 10.0,
        },
    ]
