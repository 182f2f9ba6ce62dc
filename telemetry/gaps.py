"""Where an instance stopped reporting: one home for the gap rule, which the blocking check on
telemetry and the report's health page both apply."""

from __future__ import annotations

import polars as pl


def gaps(instance_samples: pl.DataFrame) -> pl.DataFrame:
    """Every gap: an instance's consecutive samples further apart than its interval.

    Returns
    -------
    pl.DataFrame
        ``service``, ``instance_id``, ``after`` (the last sample before the gap), ``missing``
        (whole intervals without a sample), longest first.
    """
    return (
        instance_samples.sort("service", "instance_id", "ts")
        .with_columns(
            step_s=pl.col("ts").diff().over("service", "instance_id").dt.total_seconds(),
            after=pl.col("ts").shift().over("service", "instance_id"),
        )
        .with_columns(missing=(pl.col("step_s") / pl.col("interval_s")).round() - 1)
        .filter(pl.col("missing") >= 1)
        .select("service", "instance_id", "after", pl.col("missing").cast(pl.Int64))
        .sort("missing", "service", "instance_id", "after", descending=[True, False, False, False])
    )
