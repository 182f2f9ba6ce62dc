"""role_series over a LazyFrame (a scan of Parquet files): the same series as over a DataFrame."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from signals import MEAN_SIGNALS, SUM_SIGNALS, role_series
from telemetry.schema import (
    INSTANCE_METRIC_COLUMNS,
    INSTANCE_SAMPLES,
    LATENCY_COLUMNS,
    RATIO_COLUMNS,
    SchemaError,
    conform,
)

START = datetime(2025, 3, 1, tzinfo=UTC)


def random_samples(seed: int = 0, intervals: int = 40) -> pl.DataFrame:
    """Canonical samples with what the aggregation must get right: two services, three roles,
    two GPU types in a role, instances that are not ready, latencies missing at random, and
    one (ts, service, role) group with no ready instance."""
    rng = np.random.default_rng(seed)
    fleet = [
        (service, role, gpu, index)
        for service in ("chat", "code")
        for role, gpus in (
            ("prefill", ("L20", "H20")),
            ("decode", ("H20",)),
            ("colocated", ("A100",)),
        )
        for gpu in gpus
        for index in range(3)
    ]
    rows = len(fleet) * intervals
    service, role, gpu, index = (np.array(column) for column in zip(*fleet, strict=True))
    metrics = {
        c: rng.uniform(0, 1, rows) if c in RATIO_COLUMNS else rng.uniform(0, 500, rows)
        for c in INSTANCE_METRIC_COLUMNS
    }
    for c in LATENCY_COLUMNS:
        metrics[c] = np.where(rng.random(rows) < 0.3, np.nan, metrics[c])
    tick = np.repeat(np.arange(intervals), len(fleet))
    frame = pl.DataFrame(
        {
            "ts": [START + timedelta(seconds=15 * int(k)) for k in tick],
            "interval_s": 15.0,
            "service": np.tile(service, intervals),
            "role": np.tile(role, intervals),
            "instance_id": np.tile(
                [f"{r}-{g}-{i}" for r, g, i in zip(role, gpu, index, strict=True)], intervals
            ),
            "gpu_type": np.tile(gpu, intervals),
            "gpus_per_instance": 1,
            "ready": rng.random(rows) >= 0.2,
            **metrics,
        },
        nan_to_null=True,
    )
    idle = (pl.col("ts") == START) & (pl.col("service") == "code") & (pl.col("role") == "decode")
    return conform(frame.with_columns(ready=pl.col("ready") & ~idle), INSTANCE_SAMPLES)


def scan(frame: pl.DataFrame, directory) -> pl.LazyFrame:
    """``frame`` written as two Parquet files, as days of an export are, and scanned back."""
    half = frame.height // 2
    frame[:half].write_parquet(directory / "a.parquet")
    frame[half:].write_parquet(directory / "b.parquet")
    return pl.scan_parquet(directory / "*.parquet")


def test_a_scan_aggregates_to_the_same_series_as_the_frame(tmp_path):
    samples = random_samples()
    eager = role_series(samples)
    lazy = role_series(scan(samples, tmp_path))

    assert_frame_equal(lazy, eager, check_exact=False, rel_tol=1e-12)
    # The fixture exercises what it claims: not-ready rows, missing latencies, an idle group.
    assert (eager["ready_instances"] < eager["instances"]).any()
    idle = eager.filter(pl.col("ready_instances") == 0)
    assert idle.height == 1
    assert idle.select(SUM_SIGNALS).row(0) == (0.0, 0.0, 0.0)
    assert all(v is None for v in idle.select(MEAN_SIGNALS).row(0))


def test_a_scan_is_cast_to_the_canonical_types(tmp_path):
    samples = random_samples(seed=1, intervals=8)
    loose = samples.with_columns(pl.col("gpus_per_instance").cast(pl.Int64))
    assert_frame_equal(role_series(scan(loose, tmp_path)), role_series(samples))


def test_a_scan_missing_a_column_is_refused(tmp_path):
    samples = random_samples(intervals=4).drop("ready")
    with pytest.raises(SchemaError, match=r"missing columns \['ready'\]"):
        role_series(scan(samples, tmp_path))


def test_a_scan_mixing_interval_lengths_in_a_group_is_refused(tmp_path):
    samples = random_samples(intervals=4).with_columns(
        interval_s=pl.when(pl.col("instance_id") == "prefill-L20-0").then(30.0).otherwise(15.0)
    )
    with pytest.raises(ValueError, match="mix interval_s"):
        role_series(scan(samples, tmp_path))
