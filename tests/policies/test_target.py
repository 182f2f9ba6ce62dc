"""target_from_telemetry: the busiest per-instance decode TPS that still met the TBT SLO."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from policies import deployed_pd_ratio, target_from_telemetry
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


def test_deployed_pd_ratio_counts_distinct_instances_per_role():
    start = datetime(2023, 11, 16, tzinfo=UTC)
    rows = [
        {"ts": start + timedelta(seconds=15 * k), "service": "chat", "role": role, "instance_id": i}
        for k in range(3)
        for role, i in [("prefill", "p0"), ("prefill", "p1"), ("decode", "d0"), ("decode", "d1")]
    ] + [{"ts": start, "service": "chat", "role": "decode", "instance_id": "d2"}]
    samples = pl.DataFrame(rows)
    assert deployed_pd_ratio(samples, service="chat") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="prefill and decode"):
        deployed_pd_ratio(samples.filter(pl.col("role") == "decode"), service="chat")
