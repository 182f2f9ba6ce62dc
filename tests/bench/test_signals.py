"""bench/signals.py: its synthetic week is canonical and deterministic, and handing the study
the aggregated series changes none of the study's figures."""

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench.signals import (
    POOLS,
    SLO,
    as_instances,
    instance_samples,
    load_curve,
    service_load,
)
from signals import role_series, study_table

#: An hour of ten instances at 15 s: 60 windows of 60 s, enough for every statistic.
INTERVALS, INSTANCES = 240, 10


def test_the_synthetic_samples_are_deterministic_and_split_into_the_pools():
    curve = load_curve(INTERVALS, INSTANCES)
    first = instance_samples(0, INTERVALS, INSTANCES, curve)
    assert_frame_equal(first, instance_samples(0, INTERVALS, INSTANCES, curve))
    assert first.height == INTERVALS * INSTANCES
    pools = first.group_by("role", "gpu_type").agg(pl.col("instance_id").n_unique())
    assert sorted(pools.rows()) == [("decode", "H20", 3), ("prefill", "L20", 7)]
    assert first["ts"].is_sorted()
    # A later span is its own draw, not a repeat of the first.
    later = instance_samples(INTERVALS // 2, INTERVALS // 2, INSTANCES, curve)
    assert not later["decode_tps"].equals(first["decode_tps"][later.height :])


@pytest.mark.slow
def test_the_study_of_the_role_series_equals_the_study_of_the_instances():
    curve = load_curve(INTERVALS, INSTANCES)
    samples = instance_samples(0, INTERVALS, INSTANCES, curve)
    load = service_load(curve)
    direct = study_table(samples, load, window_s=60.0, slo=SLO)
    pseudo = as_instances(role_series(samples), {role: gpu for role, (gpu, _) in POOLS.items()})
    assert pseudo.height == 2 * INTERVALS
    assert_frame_equal(study_table(pseudo, load, window_s=60.0, slo=SLO), direct)
