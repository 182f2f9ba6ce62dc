"""Skipped rows: input a load reads and leaves aside on purpose, apart from bad data.

A real scrape holds far more than heteroscale reads (process and HTTP metrics, a histogram's
``_sum`` and ``_count``, deprecated names beside current ones). Counting those as quarantined
would bury the rows that are actually wrong, so they are counted here instead, by reason and
metric name, and the accounting reads ``rows_read = rows_loaded + rows_skipped +
rows_quarantined``. Nothing skipped is bad: the quarantine (:mod:`quarantine`) is for that.
"""

from __future__ import annotations

import polars as pl

#: One row per (source, reason, metric); ``metric`` is null for a reason about intervals.
SKIPPED_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "reason": pl.String(),
    "metric": pl.String(),
    "rows": pl.Int64(),
}

#: Every reason a row is skipped for, with what it means.
REASONS = {
    "unused_metric": "heteroscale reads no signal from it (telemetry/ingest/catalog.py lists "
    "what it reads); map it in a mapping file if it carries one",
    "histogram_sum_count": "the _sum or _count of a histogram whose buckets are read (the "
    "quantiles come from the buckets)",
    "superseded_metric": "an older name of a metric the same instance also exports under its "
    "current name, which is read instead",
    "readiness_condition": 'kube_pod_status_ready for condition "false" or "unknown"; the '
    'condition="true" series says the same and is read',
    "gpu_without_pod": 'a GPU no pod holds (the DCGM exporter writes pod=""): it serves no '
    "instance",
    "edge_interval": "an instance's first or last interval, which lacks only counter rates (a "
    "rate needs two samples, so the first scrape only sets the baseline)",
}

_EMPTY = pl.DataFrame(schema=SKIPPED_SCHEMA)


def empty() -> pl.DataFrame:
    """A skipped frame with no rows, to concatenate onto."""
    return _EMPTY


def rows(frame: pl.DataFrame, *, source: str, reason: str, metric: pl.Expr | None) -> pl.DataFrame:
    """Skipped rows from ``frame`` (one input row per row, or its ``rows`` column), summed by
    metric.

    Raises
    ------
    ValueError
        For a reason not in :data:`REASONS` (a typo would otherwise be reported to users).
    """
    if reason not in REASONS:
        raise ValueError(f"unknown skip reason {reason!r}")
    if frame.height == 0:
        return empty()
    count = pl.col("rows") if "rows" in frame.columns else pl.lit(1, pl.Int64)
    built = frame.select(
        pl.lit(source).alias("source"),
        pl.lit(reason).alias("reason"),
        (metric if metric is not None else pl.lit(None)).cast(pl.String).alias("metric"),
        count.cast(pl.Int64).alias("rows"),
    )
    return built.group_by("source", "reason", "metric", maintain_order=True).agg(
        pl.col("rows").sum()
    )


def by_reason(skipped: pl.DataFrame) -> dict[str, int]:
    """Skipped input rows per reason, most frequent first."""
    counts = skipped.group_by("reason").agg(pl.col("rows").sum())
    return dict(counts.sort(["rows", "reason"], descending=[True, False]).rows())


def by_metric(skipped: pl.DataFrame) -> dict[str, int]:
    """Skipped input rows per metric name (the reasons about metrics), most frequent first."""
    named = skipped.filter(pl.col("metric").is_not_null())
    counts = named.group_by("metric").agg(pl.col("rows").sum())
    return dict(counts.sort(["rows", "metric"], descending=[True, False]).rows())
