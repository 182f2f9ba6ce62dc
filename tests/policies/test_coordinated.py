"""The coordinated rule: decode TPS sizes both pools, the ratio ties them, the band damps."""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    HOLD,
    SCALE_IN,
    SCALE_OUT,
    CoordinatedPolicyConfig,
    PoolCounts,
    decide,
    pool_targets,
)


def test_decode_tps_over_the_target_sizes_decode_and_the_ratio_sizes_prefill():
    config = CoordinatedPolicyConfig(target_decode_tps_per_instance=100.0, pd_ratio=0.5)
    assert pool_targets(950.0, config) == PoolCounts(prefill=5, decode=10)
    assert pool_targets(1000.0, config) == PoolCounts(prefill=5, decode=10)
    assert pool_targets(1001.0, config) == PoolCounts(prefill=6, decode=11)


def test_float_noise_does_not_add_an_instance():
    config = CoordinatedPolicyConfig(target_decode_tps_per_instance=100.0, pd_ratio=0.28)
    assert 25 * 0.28 > 7  # the trap: 7.000000000000001
    assert pool_targets(2500.0, config) == PoolCounts(prefill=7, decode=25)


def test_bounds_clamp_each_pool_and_prefill_follows_the_clamped_decode():
    config = CoordinatedPolicyConfig(
        target_decode_tps_per_instance=100.0,
        pd_ratio=0.5,
        min_decode=2,
        max_decode=8,
        min_prefill=3,
        max_prefill=3,
    )
    assert pool_targets(0.0, config) == PoolCounts(prefill=3, decode=2)
    assert pool_targets(5000.0, config) == PoolCounts(prefill=3, decode=8)


@pytest.mark.parametrize(
    ("decode_tps", "action"),
    [(1000.0, HOLD), (1100.0, HOLD), (1200.0, SCALE_OUT), (900.0, HOLD), (800.0, SCALE_IN)],
)
def test_hysteresis_band_on_the_total(decode_tps, action):
    config = CoordinatedPolicyConfig(target_decode_tps_per_instance=100.0, pd_ratio=1.0)
    decision = decide(decode_tps, PoolCounts(prefill=10, decode=10), config)
    assert decision.action == action
    assert decision.target == pool_targets(decode_tps, config)
    assert f"wants {decision.target.decode}D/{decision.target.prefill}P" in decision.reason


def test_asymmetric_band():
    config = CoordinatedPolicyConfig(
        target_decode_tps_per_instance=100.0, scale_out_threshold=0.0, scale_in_threshold=0.5
    )
    current = PoolCounts(prefill=10, decode=10)
    assert decide(1100.0, current, config).action == SCALE_OUT
    assert decide(600.0, current, config).action == HOLD
    assert decide(400.0, current, config).action == SCALE_IN


def test_an_empty_service_scales_out_when_load_appears():
    config = CoordinatedPolicyConfig(
        target_decode_tps_per_instance=100.0, min_prefill=0, min_decode=0
    )
    assert decide(50.0, PoolCounts(0, 0), config).action == SCALE_OUT
    assert decide(0.0, PoolCounts(0, 0), config).action == HOLD


@pytest.mark.parametrize(
    "overrides",
    [
        {"target_decode_tps_per_instance": 0.0},
        {"pd_ratio": -1.0},
        {"control_interval_s": 0.0},
        {"scale_in_threshold": 1.0},
        {"scale_out_threshold": -0.1},
        {"min_decode": 5, "max_decode": 4},
        {"min_prefill": -1},
    ],
)
def test_invalid_configs_are_rejected(overrides):
    with pytest.raises(ValueError):
        CoordinatedPolicyConfig(**{"target_decode_tps_per_instance": 100.0, **overrides})


bounds = st.tuples(st.integers(0, 50), st.integers(0, 50)).map(sorted)


@given(
    decode_tps=st.floats(0.0, 1e7, allow_nan=False),
    target=st.floats(1.0, 1e4),
    ratio_percent=st.integers(1, 400),
    prefill_bounds=bounds,
    decode_bounds=bounds,
    current=st.tuples(st.integers(0, 60), st.integers(0, 60)),
)
def test_targets_stay_in_bounds_and_in_ratio(
    decode_tps, target, ratio_percent, prefill_bounds, decode_bounds, current
):
    config = CoordinatedPolicyConfig(
        target_decode_tps_per_instance=target,
        pd_ratio=ratio_percent / 100,
        min_prefill=prefill_bounds[0],
        max_prefill=prefill_bounds[1],
        min_decode=decode_bounds[0],
        max_decode=decode_bounds[1],
    )
    decision = decide(decode_tps, PoolCounts(*current), config)
    prefill, decode = decision.target
    assert config.min_decode <= decode <= config.max_decode
    assert config.min_prefill <= prefill <= config.max_prefill
    exact_prefill = math.ceil(Fraction(ratio_percent, 100) * decode)
    assert prefill == max(config.min_prefill, min(config.max_prefill, exact_prefill))
