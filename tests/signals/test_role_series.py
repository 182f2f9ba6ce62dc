"""role_series: throughputs summed and gauges averaged over the ready instances of a role."""

import polars as pl
import pytest
from numpy.testing import assert_allclose

from signals import MEAN_SIGNALS, SIGNALS, SUM_SIGNALS, role_series
from telemetry.schema import INSTANCE_METRIC_COLUMNS
from tests.canonical_frames import instance_samples


def test_every_metric_is_a_signal_exactly_once():
    assert set(SUM_SIGNALS) | set(MEAN_SIGNALS) == set(INSTANCE_METRIC_COLUMNS)
    assert not set(SUM_SIGNALS) & set(MEAN_SIGNALS)
    assert len(SIGNALS) == len(INSTANCE_METRIC_COLUMNS)


def test_sums_and_means_over_ready_instances_only():
    ready = instance_samples(
        role="decode",
        instances=2,
        intervals=3,
        decode_tps=[100.0, 200.0, 300.0],
        gpu_util_ratio=[0.8, 0.9, 1.0],
        tbt_p99_s=0.05,
    )
    starting = instance_samples(
        role="decode",
        instances=1,
        intervals=3,
        ready=False,
        decode_tps=1000.0,
        gpu_util_ratio=0.0,
        tbt_p99_s=9.0,
    ).with_columns(instance_id=pl.lit("svc-decode-starting"))
    series = role_series(pl.concat([starting, ready]))

    assert series["ts"].is_sorted()
    assert series["instances"].to_list() == [3, 3, 3]
    assert series["ready_instances"].to_list() == [2, 2, 2]
    assert_allclose(series["decode_tps"].to_numpy(), [200.0, 400.0, 600.0])
    assert_allclose(series["gpu_util_ratio"].to_numpy(), [0.8, 0.9, 1.0])
    assert_allclose(series["tbt_p99_s"].to_numpy(), [0.05] * 3)
    assert series["ttft_p99_s"].null_count() == 3  # decode instances emit no first token


def test_latency_mean_skips_instances_without_a_value():
    with_value = instance_samples(role="decode", instances=1, intervals=2, tbt_p50_s=0.02)
    without = instance_samples(role="decode", instances=1, intervals=2).with_columns(
        instance_id=pl.lit("svc-decode-idle")
    )
    series = role_series(pl.concat([with_value, without]))
    assert_allclose(series["tbt_p50_s"].to_numpy(), [0.02, 0.02])


def test_a_role_with_no_ready_instance_keeps_its_row():
    idle = instance_samples(
        role="prefill", instances=2, intervals=2, ready=False, prefill_tps_total=50.0
    )
    series = role_series(idle)
    assert series.height == 2
    assert series["ready_instances"].to_list() == [0, 0]
    assert series["prefill_tps_total"].to_list() == [0.0, 0.0]
    assert series["gpu_util_ratio"].null_count() == 2


def test_one_row_per_ts_service_role_in_sorted_order():
    frames = [
        instance_samples(role=role, instances=2, intervals=4, service=service)
        for service in ("b", "a")
        for role in ("decode", "prefill")
    ]
    series = role_series(pl.concat(frames))
    assert series.height == 2 * 2 * 4
    keys = series.select("service", "role", "ts")
    assert keys.equals(keys.sort("service", "role", "ts"))
    assert keys.is_unique().all()


def test_mixed_interval_lengths_in_one_group_are_rejected():
    short = instance_samples(role="decode", instances=1, intervals=1, interval_s=15.0)
    long = short.with_columns(interval_s=pl.lit(30.0), instance_id=pl.lit("other"))
    with pytest.raises(ValueError, match="mix interval_s"):
        role_series(pl.concat([short, long]))
