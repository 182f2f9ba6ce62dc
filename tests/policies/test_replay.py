"""replay_decisions: the controller walked over a recorded run, one decision per interval."""

from datetime import timedelta

import polars as pl
import pytest
from numpy.testing import assert_allclose

from policies import (
    DECISIONS_SCHEMA,
    HOLD,
    CoordinatedPolicyConfig,
    replay_decisions,
)
from tests.canonical_frames import START, instance_samples

# 15 s samples, 60 s control intervals: four samples per decision.
WINDOW_TOTALS = [1000.0, 2000.0, 900.0, 950.0]


def recorded_run(decode_instances=10, prefill_instances=8):
    totals = [total for total in WINDOW_TOTALS for _ in range(4)]
    decode = instance_samples(
        role="decode",
        instances=decode_instances,
        intervals=len(totals),
        decode_tps=[total / decode_instances for total in totals],
    )
    prefill = instance_samples(role="prefill", instances=prefill_instances, intervals=len(totals))
    other = instance_samples(role="decode", instances=1, intervals=len(totals), service="other")
    return pl.concat([prefill, other, decode])


def test_one_decision_per_control_interval_at_its_end():
    decisions = replay_decisions(recorded_run(), CoordinatedPolicyConfig(100.0), service="svc")
    assert decisions.schema == pl.Schema(DECISIONS_SCHEMA)
    assert decisions["ts"].to_list() == [START + timedelta(seconds=60 * k) for k in (1, 2, 3, 4)]
    assert decisions["service"].unique().to_list() == ["svc"]
    assert_allclose(decisions["decode_tps_observed"].to_numpy(), WINDOW_TOTALS)


def test_both_pools_move_together_from_the_observed_start():
    config = CoordinatedPolicyConfig(100.0, pd_ratio=0.5, scale_in_cooldown_s=0.0)
    decisions = replay_decisions(recorded_run(), config, service="svc")
    assert decisions.select("current_prefill", "current_decode").row(0) == (8, 10)
    assert decisions["action"].to_list() == ["scale_in", "scale_out", "scale_in", HOLD]
    assert decisions["target_decode"].to_list() == [10, 20, 9, 10]
    assert decisions["target_prefill"].to_list() == [5, 10, 5, 5]
    # After an action the next current counts are that action's targets, for both pools.
    acted = decisions.filter(pl.col("action") != HOLD).head(3)
    following = decisions.slice(1, 3)
    assert (
        acted.select("target_prefill", "target_decode").rows()
        == following.select("current_prefill", "current_decode").rows()
    )
    # What the cluster is asked to run: the targets after an action, unchanged after a hold.
    assert decisions.select("next_prefill", "next_decode").rows() == [
        (5, 10),
        (10, 20),
        (5, 9),
        (5, 9),
    ]


def test_observed_tps_is_the_duration_weighted_mean_over_the_interval():
    decode = instance_samples(
        role="decode", instances=2, intervals=4, decode_tps=[400.0, 500.0, 600.0, 500.0]
    )
    decisions = replay_decisions(decode, CoordinatedPolicyConfig(100.0), service="svc")
    assert_allclose(decisions["decode_tps_observed"].to_numpy(), [1000.0])
    assert decisions.select("current_prefill", "current_decode").row(0) == (0, 2)


def test_a_service_without_decode_samples_is_an_error():
    with pytest.raises(ValueError, match="no decode samples for service 'missing'"):
        replay_decisions(recorded_run(), CoordinatedPolicyConfig(100.0), service="missing")


def test_a_scale_in_waits_out_its_cool_down_after_any_scale_action():
    config = CoordinatedPolicyConfig(100.0, pd_ratio=0.5, scale_in_cooldown_s=120.0)
    decisions = replay_decisions(recorded_run(), config, service="svc")
    # The first scale-in is free; the one 60 s after the scale-out is held, the next one not.
    assert decisions["action"].to_list() == ["scale_in", "scale_out", HOLD, "scale_in"]
    assert "cools down for 120 s" in decisions["reason"][2]
