"""From raw exposition samples to per-instance, per-interval signal values.

What PromQL does on a server, done here on samples read from files: counters become rates
(with resets and gaps handled), histograms become quantiles (:mod:`histogram`), gauges are
averaged over the interval, every series rolls up to the instance it belongs to (the GPUs of a
pod, the engines of a server) and units become canonical. Every raw sample is accounted for:
it feeds one signal value (its ``rows`` count travels with it) or lands in quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from telemetry.ingest import catalog as cat
from telemetry.ingest import quarantine
from telemetry.ingest.exposition.parse import RawSamples
from telemetry.ingest.histogram import histogram_quantiles

#: The per-(instance, interval, column) values every reader hands to assembly.
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "instance_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "column": pl.String(),
    "value": pl.Float64(),
    "rows": pl.Int64(),
}

#: Label columns the semantics read; absent ones are treated as null.
USED_LABELS = (
    *cat.INSTANCE_LABELS,
    *cat.ROLE_LABELS,
    *cat.GPU_TYPE_LABELS,
    *cat.GPU_LABELS,
    "service",
    "le",
    cat.READY_CONDITION[0],
)


@dataclass
class Signals:
    """Signal values, the instances' attributes and what could not be used.

    Attributes
    ----------
    values : pl.DataFrame
        :data:`SIGNAL_SCHEMA` rows; ``instance_id`` is null for service-level signals.
    attributes : pl.DataFrame
        One row per (service, instance_id): ``roles`` (list of role label values seen),
        ``gpu_type`` and ``gpus_per_instance`` (null where no label says).
    quarantine : pl.DataFrame
    notes : dict
        Unit conversions applied, counter resets and gaps, for the load report.
    """

    values: pl.DataFrame
    attributes: pl.DataFrame
    quarantine: pl.DataFrame = field(default_factory=quarantine.empty)
    notes: dict = field(default_factory=dict)


def _catalog_frame(signals: tuple[cat.Signal, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "metric": s.sample_name,
                "family": s.metric,
                "column": s.column,
                "kind": s.kind,
                "unit": s.unit,
                "scale": cat.UNIT_SCALE[s.unit],
                "rollup": s.rollup,
                "level": s.level,
                "priority": i,
            }
            for i, s in enumerate(signals)
        ]
    )


def _series_name() -> pl.Expr:
    return pl.format("{}{{{}}}", pl.col("metric"), pl.col("labels"))


def _type_mismatches(types: dict[str, str], signals: tuple[cat.Signal, ...]) -> list[str]:
    """Sample names whose ``# TYPE`` contradicts the catalog (e.g. a counter exported as gauge)."""
    bad = []
    for s in signals:
        declared = types.get(s.metric) or types.get(s.metric.removesuffix("_total"))
        if s.column in ("input_tps", "output_tps"):
            continue  # the _sum of a histogram, read as a counter on purpose
        if declared and declared not in (s.kind, "untyped", "unknown"):
            bad.append(s.sample_name)
    return bad


def derive(
    raw: RawSamples,
    *,
    interval_s: float,
    service: str | None = None,
    max_gap_s: float | None = None,
    signals: tuple[cat.Signal, ...] = cat.CATALOG,
) -> Signals:
    """Turn raw samples into signal values at ``interval_s`` bins.

    Parameters
    ----------
    raw : RawSamples
        Parsed exposition samples of any number of files.
    interval_s : float
        Interval length; bins are aligned to multiples of it since the Unix epoch.
    service : str, optional
        Service of every sample; by default each sample's ``service`` label.
    max_gap_s : float, optional
        Two counter samples further apart than this do not make a rate (the counter restarts
        from the later one, as after a scrape outage); default four intervals.
    signals : tuple of Signal
        The metric catalog (:data:`telemetry.ingest.catalog.CATALOG`).

    Returns
    -------
    Signals

    Notes
    -----
    A counter's increase between two samples is attributed to the interval holding their
    midpoint, so samples at interval boundaries (how Prometheus scrapes line up) give each
    interval exactly its own increase; a decrease is a reset and the increase is the new value,
    as PromQL's ``rate`` does. A counter's first sample only sets the baseline. Gauges are
    averaged over the samples inside the interval. Per-GPU series average to the pod, per-engine
    series add up (catalog ``rollup``).
    """
    max_gap = timedelta(seconds=max_gap_s if max_gap_s is not None else 4 * interval_s)
    labels = raw.labels
    for name in USED_LABELS:
        if name not in labels.columns:
            labels = labels.with_columns(pl.lit(None, pl.String).alias(name))
    labels = labels.with_columns(
        pl.coalesce(
            pl.col("gpu_type"),
            pl.col("modelName").map_elements(cat.gpu_model, return_dtype=pl.String),
        ).alias("gpu_model")
    )
    frame = raw.samples.join(
        labels.select("labels", *USED_LABELS, "gpu_model"), on="labels", how="left"
    )
    frame = frame.join(_catalog_frame(signals), on="metric", how="left")
    service_expr = pl.lit(service) if service else pl.col("service")
    frame = frame.with_columns(
        service_expr.alias("service"),
        pl.coalesce(*cat.INSTANCE_LABELS).alias("instance_id"),
        _series_name().alias("series"),
    )
    problems: list[pl.DataFrame] = []

    def take(mask: pl.Expr, reason: str, detail: pl.Expr | str, location=None) -> None:
        nonlocal frame
        bad = frame.filter(mask)
        if bad.height:
            problems.append(
                quarantine.rows(
                    bad,
                    source=pl.col("source"),
                    location=location if location is not None else pl.col("series"),
                    reason=reason,
                    detail=detail,
                    raw=pl.format("line {}: {} {}", "line", "series", "value"),
                )
            )
        frame = frame.filter(~mask.fill_null(False))

    take(
        pl.col("column").is_null(),
        "unknown_metric",
        pl.format("{} is not in the metric catalog", "metric"),
        location=pl.col("metric"),
    )
    mismatched = _type_mismatches(raw.types, signals)
    take(
        pl.col("metric").is_in(mismatched),
        "type_mismatch",
        pl.format("# TYPE of {} disagrees with the catalog's {}", "family", "kind"),
    )
    ready_label, ready_value = cat.READY_CONDITION
    take(
        (pl.col("column") == "ready") & (pl.col(ready_label) != ready_value),
        "superseded_metric",
        f'only the {ready_label}="{ready_value}" series of readiness is read',
    )
    take(pl.col("service").is_null(), "missing_service", "no service label and no --service")
    take(
        pl.col("instance_id").is_null() & (pl.col("level") == "instance"),
        "missing_instance",
        "no " + " or ".join(cat.INSTANCE_LABELS) + " label names the instance",
    )
    take(~pl.col("value").is_finite(), "non_finite_value", pl.format("value {}", "value"))
    take(
        (pl.col("value") < 0) & (pl.col("kind") != "gauge"),
        "negative_counter",
        pl.format("counter value {}", "value"),
    )
    take(
        (pl.col("value") < 0) & (pl.col("kind") == "gauge"),
        "negative_value",
        pl.format("gauge value {}", "value"),
    )
    frame = frame.sort("source", "line")
    take(
        pl.struct("metric", "labels", "ts").is_duplicated()
        & ~pl.struct("metric", "labels", "ts").is_first_distinct(),
        "duplicate_sample",
        pl.format("a second sample at {}", "ts"),
    )
    take(
        pl.col("ts") < pl.col("ts").cum_max().shift(1).over("source", "metric", "labels"),
        "out_of_order_timestamp",
        pl.format("{} is earlier than an earlier line's timestamp", "ts"),
    )
    chosen = frame.group_by("service", "instance_id", "column").agg(
        pl.col("priority").min().alias("chosen")
    )
    frame = frame.join(chosen, on=["service", "instance_id", "column"], nulls_equal=True)
    take(
        pl.col("priority") != pl.col("chosen"),
        "superseded_metric",
        pl.format("{} is read from a newer metric name for this instance", "column"),
    )
    notes = {
        "units": {
            f"{m} ({u})": f"x {s:g} -> {c}"
            for m, u, s, c in frame.filter(pl.col("scale") != 1.0)
            .select("family", "unit", "scale", "column")
            .unique()
            .sort("family")
            .rows()
        }
    }
    frame = frame.with_columns(pl.col("value") * pl.col("scale"))
    attributes = _attributes(frame)
    bin_us = round(interval_s * 1e6)
    gauges = _gauges(frame.filter(pl.col("kind") == "gauge"), bin_us)
    counters, resets, gaps = _rates(frame.filter(pl.col("kind") != "gauge"), bin_us, max_gap)
    notes["counter_resets"] = resets
    notes["counter_gaps"] = gaps
    histograms, malformed = _quantiles(counters.filter(pl.col("kind") == "histogram"))
    if malformed.height:
        problems.append(malformed)
    values = pl.concat(
        [
            gauges,
            _rollup(counters.filter(pl.col("kind") == "counter")),
            histograms,
        ],
        how="diagonal_relaxed",
    )
    return Signals(
        values=values.select(list(SIGNAL_SCHEMA)).cast(SIGNAL_SCHEMA),
        attributes=attributes,
        quarantine=pl.concat([quarantine.empty(), *problems]),
        notes=notes,
    )


def sum_present(column: str) -> pl.Expr:
    """The sum of the non-null values, null (not 0) when there are none: no data is not zero."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum())


def _bin(at: pl.Expr, bin_us: int) -> pl.Expr:
    return at.dt.truncate(f"{bin_us}us")


def _rollup(per_series: pl.DataFrame) -> pl.DataFrame:
    """One value per (service, instance, column, interval) from the series' values."""
    keys = ["service", "instance_id", "column", "ts"]
    present = pl.col("value").is_not_null()
    return per_series.group_by(keys).agg(
        pl.when(present.any())
        .then(
            pl.when(pl.col("rollup").first() == "mean")
            .then(pl.col("value").mean())
            .otherwise(pl.col("value").sum())
        )
        .alias("value"),
        pl.col("rows").sum(),
    )


def _gauges(frame: pl.DataFrame, bin_us: int) -> pl.DataFrame:
    """Interval means per series, then the instance's rollup across its series."""
    per_series = frame.group_by(
        "service", "instance_id", "column", "rollup", "series", _bin(pl.col("ts"), bin_us)
    ).agg(pl.col("value").mean(), pl.len().alias("rows"))
    return _rollup(per_series)


def _rates(frame: pl.DataFrame, bin_us: int, max_gap: timedelta) -> tuple[pl.DataFrame, int, int]:
    """Per-series rates per interval of counters and histogram buckets, resets and gaps counted."""
    series = ["metric", "labels"]
    ordered = frame.sort(*series, "ts").with_columns(
        pl.col("value").shift(1).over(series).alias("previous"),
        pl.col("ts").shift(1).over(series).alias("previous_ts"),
    )
    gap = (pl.col("ts") - pl.col("previous_ts")) > max_gap
    reset = pl.col("value") < pl.col("previous")
    counted = ordered.with_columns(
        pl.when(pl.col("previous").is_null() | gap)
        .then(None)
        .when(reset)
        .then(pl.col("value"))
        .otherwise(pl.col("value") - pl.col("previous"))
        .alias("increase"),
        pl.when(pl.col("previous").is_null() | gap)
        .then(pl.col("ts"))
        .otherwise(pl.col("previous_ts") + (pl.col("ts") - pl.col("previous_ts")) / 2)
        .alias("at"),
    )
    resets = counted.filter(reset & ~gap.fill_null(False)).height
    gaps = counted.filter(gap.fill_null(False)).height
    elapsed = pl.when(pl.col("increase").is_not_null()).then(
        (pl.col("ts") - pl.col("previous_ts")).dt.total_microseconds() / 1e6
    )
    rated = counted.group_by(
        "service",
        "instance_id",
        "column",
        "kind",
        "rollup",
        "series",
        "le",
        _bin(pl.col("at"), bin_us).alias("ts"),
    ).agg(
        pl.when(pl.col("increase").is_not_null().any())
        .then(pl.col("increase").sum() / elapsed.sum())
        .alias("value"),
        pl.len().alias("rows"),
    )
    return rated, resets, gaps


def _quantiles(buckets: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """p50/p90/p99 signal values per instance interval, and histograms without ``+Inf``."""
    keys = ["service", "instance_id", "column", "ts"]
    summed = (
        buckets.with_columns(pl.col("le").cast(pl.Float64, strict=False))
        .group_by(*keys, "le")
        .agg(sum_present("value").alias("count"), pl.col("rows").sum())
    )
    groups = summed.group_by(keys).agg(
        pl.col("rows").sum(), pl.col("le").is_infinite().any().alias("complete")
    )
    quantiles = histogram_quantiles(
        summed.filter(pl.col("count").is_not_null()).drop("rows"), keys, cat.QUANTILES
    )
    bad = quarantine.rows(
        groups.filter(~pl.col("complete")),
        source="exposition",
        location=pl.format("{} of {} at {}", "column", "instance_id", "ts"),
        reason="malformed_histogram",
        detail='no le="+Inf" bucket',
        count=pl.col("rows"),
    )
    good = groups.filter(pl.col("complete")).join(quantiles, on=keys, how="left")
    values = pl.concat(
        good.select(
            "service",
            "instance_id",
            "ts",
            pl.format("{}_{}_s", "column", pl.lit(q)).alias("column"),
            pl.col(q).alias("value"),
            (pl.col("rows") if i == 0 else pl.lit(0)).cast(pl.Int64).alias("rows"),
        )
        for i, q in enumerate(cat.QUANTILES)
    )
    return values, bad


def _attributes(frame: pl.DataFrame) -> pl.DataFrame:
    """Role, GPU type and GPU count of each instance, from whichever of its series carry them."""
    instance_level = frame.filter(pl.col("level") == "instance")
    return instance_level.group_by("service", "instance_id").agg(
        pl.coalesce(*cat.ROLE_LABELS).drop_nulls().unique().sort().alias("roles"),
        pl.col("gpu_model").drop_nulls().first().alias("gpu_type"),
        pl.coalesce(*cat.GPU_LABELS).drop_nulls().n_unique().alias("gpus_per_instance"),
    )
