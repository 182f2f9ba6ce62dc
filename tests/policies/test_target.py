"""target_from_telemetry: the busiest per-instance decode TPS that still met the TBT SLO."""

import pytest

from policies import target_from_telemetry
from tests.canonical_frames import instance_samples


def decode_pool(tbt_p99_s):
    # Two ready instances, so per-instance TPS is the value given to each.
    return instance_samples(
        role="decode",
        instances=2,
        intervals=4,
        decode_tps=[100.0, 200.0, 300.0, 400.0],
        tbt_p99_s=tbt_p99_s,
    )


def test_highest_per_instance_tps_within_the_slo():
    samples = decode_pool([0.02, 0.03, 0.05, 0.08])
    assert target_from_telemetry(samples, 0.05, service="svc") == 300.0
    assert target_from_telemetry(samples, 0.1, service="svc") == 400.0


def test_intervals_without_tbt_are_no_evidence():
    samples = decode_pool([0.02, 0.03, None, None])
    assert target_from_telemetry(samples, 1.0, service="svc") == 200.0


def test_no_interval_within_the_slo_is_an_error():
    with pytest.raises(ValueError, match="tbt_p99_s <= 0.01"):
        target_from_telemetry(decode_pool(0.05), 0.01, service="svc")
    with pytest.raises(ValueError, match="must be > 0"):
        target_from_telemetry(decode_pool(0.05), 0.0, service="svc")
