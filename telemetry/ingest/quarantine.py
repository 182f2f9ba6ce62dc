"""Quarantine: the rows a load could not use, each with the reason, kept instead of dropped.

One quarantine row stands for ``rows`` input rows that share a source, a location (a line, a
series, an instance interval) and a reason, so a broken scrape does not turn into millions of
rows. Only bad data lands here; input heteroscale reads no signal from is skipped and counted
apart (:mod:`skipped`). Row accounting sums ``rows``: every input row is loaded, skipped or
counted here, never silently dropped.
"""

from __future__ import annotations

import polars as pl

QUARANTINE = "quarantine"

#: One row per (source, location, reason); the store partitions the table by ``source``, so
#: re-loading a source replaces its quarantine rows like it replaces its telemetry partitions.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "location": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
    "rows": pl.Int64(),
}

#: Every reason a row can be quarantined for, with what the user can do about it.
REASONS = {
    "malformed_line": "fix the exporter or the file: the line is not valid exposition text",
    "truncated": "re-export the file: it ends in the middle of a line",
    "non_finite_value": "the value is NaN or infinite; check the exporter",
    "invalid_readiness": "readiness (kube_pod_status_ready) is 0 or 1; check the exporter",
    "negative_value": "measurements cannot be negative; check the exporter or the mapping",
    "negative_counter": "counters never go below zero; check the exporter",
    "duplicate_sample": "two samples of one series share a timestamp; keep one scrape per time",
    "out_of_order_timestamp": "samples of a series must be in time order within a file",
    "future_timestamp": "the timestamp is ahead of the loader's clock; check the host's NTP",
    "type_mismatch": "the file's # TYPE disagrees with the catalog; check the exporter version",
    "malformed_histogram": 'a histogram needs a le="+Inf" bucket at every timestamp',
    "non_cumulative_histogram": "a bucket counts fewer observations than a smaller one: "
    "histogram buckets are cumulative; check the exporter (per-bucket counts?)",
    "missing_instance": "add a pod or instance label, or name the instance in the mapping",
    "missing_service": "these series name no service and the load has several: pass "
    "--service, or add a service (or model_name) label",
    "missing_role": "add a role label (relabel in Prometheus) or a role in the mapping file",
    "conflicting_role": "an instance reports two roles; fix the labels or the mapping",
    "missing_gpu_type": "add a gpu_type/modelName label or a gpu_type in the mapping file",
    "unknown_role": "roles are prefill, decode or colocated; fix the value or the mapping",
    "ratio_above_one": "a ratio above 1 is usually a percent: declare unit: percent",
    "wrong_type": "the cell does not parse as the column's type; fix the file or the mapping",
    "missing_value": "a required cell is empty; fix the file or set a constant in the mapping",
    "incomplete_interval": "a signal has no sample in this interval (a gap, or clock skew "
    "between series)",
}


_EMPTY = pl.DataFrame(schema=QUARANTINE_SCHEMA)


def empty() -> pl.DataFrame:
    """A quarantine frame with no rows, to concatenate onto (one shared, immutable frame:
    building it costs more than most checks of a small scrape)."""
    return _EMPTY


def rows(
    frame: pl.DataFrame,
    *,
    source: pl.Expr | str,
    location: pl.Expr | str,
    reason: str,
    detail: pl.Expr | str,
    raw: pl.Expr | str | None = None,
    count: pl.Expr | int = 1,
) -> pl.DataFrame:
    """Quarantine rows built from ``frame``, one per row of it, grouped by location.

    Every argument is a column expression over ``frame`` or a constant, so each reader builds
    its rows from what it knows (a line number, a series, an instance interval).
    """
    if reason not in REASONS:
        raise ValueError(f"unknown quarantine reason {reason!r}")
    if frame.height == 0:  # the common case, once per check and file: skip building
        return empty()

    def expr(value):
        return value if isinstance(value, pl.Expr) else pl.lit(value)

    built = frame.select(
        expr(source).cast(pl.String).alias("source"),
        expr(location).cast(pl.String).alias("location"),
        pl.lit(reason).alias("reason"),
        expr(detail).cast(pl.String).alias("detail"),
        (expr(raw) if raw is not None else pl.lit(None)).cast(pl.String).alias("raw"),
        expr(count).cast(pl.Int64).alias("rows"),
    )
    return (
        built.group_by("source", "location", "reason", maintain_order=True)
        .agg(pl.col("detail").first(), pl.col("raw").first(), pl.col("rows").sum())
        .select(list(QUARANTINE_SCHEMA))
    )


def summary(quarantine: pl.DataFrame) -> dict[str, int]:
    """Input rows quarantined per reason, most frequent first."""
    counts = quarantine.group_by("reason").agg(pl.col("rows").sum())
    return dict(counts.sort(["rows", "reason"], descending=[True, False]).rows())
