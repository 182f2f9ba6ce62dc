"""From raw exposition samples to per-instance, per-interval signal values.

What PromQL does on a server, done here on samples read from files: counters become rates
(with resets and gaps handled), histograms become quantiles (:mod:`histogram`), gauges are
averaged over the interval, every series rolls up to the instance it belongs to (the GPUs of a
pod, the engines of a server) and units become canonical. Every raw sample is accounted for:
it feeds one signal value (its ``rows`` count travels with it), is skipped (a series no signal
is read from, :mod:`skipped`) or lands in quarantine (bad data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from telemetry.ingest import catalog as cat
from telemetry.ingest import quarantine, skipped
from telemetry.ingest.errors import no_service
from telemetry.ingest.exposition.raw import RawSamples, renumber
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
    *cat.SERVICE_LABELS,
    "le",
    cat.READY_CONDITION[0],
)


@dataclass
class Signals:
    """Signal values, the instances' attributes, what was left aside and what was bad.

    Attributes
    ----------
    values : pl.DataFrame
        :data:`SIGNAL_SCHEMA` rows; ``instance_id`` is null for service-level signals.
    attributes : pl.DataFrame
        One row per (service, instance_id): ``roles`` (list of role label values seen),
        ``gpu_type`` and ``gpus_per_instance`` (null where no label says).
    quarantine : pl.DataFrame
    notes : dict
        Unit conversions applied, counter resets and gaps, where services came from.
    skipped : pl.DataFrame
        Rows of series no signal is read from (:data:`telemetry.ingest.skipped.SKIPPED_SCHEMA`).
    """

    values: pl.DataFrame
    attributes: pl.DataFrame
    quarantine: pl.DataFrame = field(default_factory=quarantine.empty)
    notes: dict = field(default_factory=dict)
    skipped: pl.DataFrame = field(default_factory=skipped.empty)


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
    source: str = "exposition",
) -> Signals:
    """Turn raw samples into signal values at ``interval_s`` bins.

    Parameters
    ----------
    raw : RawSamples
        Parsed exposition samples of any number of files.
    interval_s : float
        Interval length; bins are aligned to multiples of it since the Unix epoch.
    service : str, optional
        Service of every sample (``--service`` or the mapping's). By default each series'
        ``service`` label, else its served model (``model_name``, Dynamo's ``model``); a series
        with none (a GPU, readiness) takes its pod's service, or the load's only one.
    max_gap_s : float, optional
        Two counter samples further apart than this do not make a rate (the counter restarts
        from the later one, as after a scrape outage); default four intervals.
    signals : tuple of Signal
        The metric catalog (:data:`telemetry.ingest.catalog.CATALOG`).
    source : str
        Quarantine source of problems found after samples of several files are combined
        (a histogram interval without its ``+Inf`` bucket).

    Returns
    -------
    Signals

    Raises
    ------
    IngestError
        When no series names a service and none was given (:func:`errors.no_service`).

    Notes
    -----
    A counter's increase between two samples is attributed to the interval holding their
    midpoint, so samples at interval boundaries (how Prometheus scrapes line up) give each
    interval exactly its own increase; a decrease is a reset and the increase is the new value,
    as PromQL's ``rate`` does. A counter's first sample only sets the baseline. Gauges are
    averaged over the samples inside the interval. Per-GPU series average to the pod, per-engine
    series add up (catalog ``rollup``). A histogram's buckets at one timestamp must be
    cumulative (non-decreasing in ``le``); where they are not, that scrape of the histogram is
    quarantined. Bucket rates that are not cumulative within an interval (a bucket's sample
    quarantined, a reset) are made monotonic as ``histogram_quantile`` does, and noted.

    Everything about a series (catalog entry, labels, instance, the checks that depend only on
    them) is computed once per series; per sample only integer ids, times and values move, in
    columnar expressions grouped by series.
    """
    max_gap = timedelta(seconds=max_gap_s if max_gap_s is not None else 4 * interval_s)
    series, notes = _series_table(raw, service, signals, source)
    frame, sources = _sample_frame(raw, series)
    frame, problems, ordered = _sample_checks(frame, series)
    alive = _chosen(frame, series)
    read = alive.filter(pl.col("chosen"))["series"]
    superseded = frame.filter(~pl.col("series").is_in(read.implode()))
    problems.append(superseded.with_columns(pl.lit("superseded_metric").alias("_reason")))
    frame = frame.filter(pl.col("series").is_in(read.implode()))
    if not ordered:
        frame = frame.sort("series", "ts")
    kept = series.filter(pl.col("series").is_in(read.implode()))
    notes["units"] = {
        f"{m} ({u})": f"x {s:g} -> {c}"
        for m, u, s, c in kept.filter(pl.col("scale") != 1.0)
        .select("family", "unit", "scale", "column")
        .unique()
        .sort("family")
        .rows()
    }
    kind = _of_series(series["kind"])
    raw_buckets, broken = _cumulative(frame.filter(kind == "histogram"), series)
    problems.append(broken.with_columns(pl.lit("non_cumulative_histogram").alias("_reason")))
    frame = frame.filter(kind != "histogram")
    if (kept["scale"] != 1.0).any():
        frame = frame.with_columns(pl.col("value") * _of_series(series["scale"]))
    frame = frame.with_columns(_of_series(series["target"]))
    raw_buckets = raw_buckets.with_columns(_of_series(series["target"]), _of_series(series["le"]))
    bin_us = round(interval_s * 1e6)
    gauges = _gauges(frame.filter(kind == "gauge"), bin_us)
    counters, resets, gaps = _rates(frame.filter(kind == "counter"), bin_us, max_gap)
    buckets, bucket_resets, bucket_gaps = _rates(raw_buckets, bin_us, max_gap)
    notes["counter_resets"] = resets + bucket_resets
    notes["counter_gaps"] = gaps + bucket_gaps
    targets = kept.select("target", "service", "instance_id", "column", "rollup").unique("target")
    one_histogram = _one_histogram_per_target(kept)
    histograms, malformed, repaired = _quantiles(buckets, targets, source, bin_us, one_histogram)
    if repaired:
        notes["histogram_repairs"] = repaired
    values = pl.concat(
        [_rollup(gauges, targets), _rollup(counters, targets), histograms],
        how="diagonal_relaxed",
    )
    bad, aside = _set_aside(problems, series, sources)
    return Signals(
        values=values.select(list(SIGNAL_SCHEMA)).cast(SIGNAL_SCHEMA),
        attributes=_attributes(kept),
        quarantine=pl.concat([quarantine.empty(), bad, malformed]),
        notes=notes,
        skipped=aside,
    )


def _histogram_label_text() -> pl.Expr:
    """The label text of a bucket series without its ``le``: the histogram it belongs to."""
    return (
        pl.col("labels")
        .str.replace(r'(^|,\s*)le="(?:[^"\\]|\\.)*"', "")
        .str.strip_prefix(",")
        .str.strip_chars_start()
    )


def _series_table(
    raw: RawSamples, service: str | None, signals, source: str
) -> tuple[pl.DataFrame, dict]:
    """One row per series: its labels, catalog entry, service, instance, integer ``target``
    (service, instance, column), why it is skipped (``_skip``) or its first series-level
    problem (``_reason``, ``_detail``); and notes on where services came from."""
    labels = raw.labels
    for name in USED_LABELS:
        if name not in labels.columns:
            labels = labels.with_columns(pl.lit(None, pl.String).alias(name))
    # A GPU series whose pod label is empty is a GPU no pod holds (the DCGM exporter's way of
    # saying so); otherwise, as in Prometheus, a label with an empty value is no label.
    idle_gpu = (pl.col("pod") == "") & pl.any_horizontal(
        pl.col(name).is_not_null() for name in cat.GPU_LABELS
    )
    labels = (
        labels.with_columns(idle_gpu.fill_null(False).alias("_idle_gpu"))
        .with_columns(
            pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in USED_LABELS
        )
        .with_columns(
            pl.coalesce(
                pl.col("gpu_type"),
                pl.col("modelName").map_elements(cat.gpu_model, return_dtype=pl.String),
            ).alias("gpu_model")
        )
    )
    histograms = [s.metric for s in signals if s.kind == "histogram"]
    part_of = pl.col("metric").str.replace(r"_(sum|count)$", "")
    histogram_part = pl.col("metric").str.contains(r"_(sum|count)$") & part_of.is_in(histograms)
    ready_label, ready_value = cat.READY_CONDITION
    table = (
        raw.series.join(
            labels.select("labels", *USED_LABELS, "gpu_model", "_idle_gpu"), on="labels", how="left"
        )
        .join(_catalog_frame(signals), on="metric", how="left")
        .with_columns(
            pl.coalesce(*cat.INSTANCE_LABELS).alias("instance_id"),
            _series_name().alias("name"),
            pl.col("le").cast(pl.Float64, strict=False),
            pl.when(pl.col("column").is_null() & histogram_part)
            .then(pl.lit("histogram_sum_count"))
            .when(pl.col("column").is_null())
            .then(pl.lit("unused_metric"))
            .when((pl.col("column") == "ready") & (pl.col(ready_label) != ready_value))
            .then(pl.lit("readiness_condition"))
            .when(pl.col("_idle_gpu"))
            .then(pl.lit("gpu_without_pod"))
            .alias("_skip"),
        )
    )
    table, notes = _services(table, service, source)
    checks = [
        (
            pl.col("metric").is_in(_type_mismatches(raw.types, signals)),
            "type_mismatch",
            pl.format("# TYPE of {} disagrees with the catalog's {}", "family", "kind"),
        ),
        (
            pl.col("service").is_null(),
            "missing_service",
            pl.format("instance {} names no service; the load has several", "instance_id"),
        ),
        (
            pl.col("instance_id").is_null() & (pl.col("level") == "instance"),
            "missing_instance",
            pl.lit("no " + " or ".join(cat.INSTANCE_LABELS) + " label names the instance"),
        ),
    ]
    reason, detail = pl.lit(None, pl.String), pl.lit(None, pl.String)
    for mask, why, what in reversed(checks):
        hit = mask.fill_null(False) & pl.col("_skip").is_null()
        reason = pl.when(hit).then(pl.lit(why)).otherwise(reason)
        detail = pl.when(hit).then(what).otherwise(detail)
    histogram = pl.col("kind") == "histogram"
    table = table.with_columns(
        reason.alias("_reason"),
        detail.alias("_detail"),
        pl.when(histogram)
        .then(pl.format("{}{{{}}}", pl.col("family"), _histogram_label_text()))
        .alias("_histogram_name"),
    ).with_columns(pl.col("_histogram_name").rank("dense").cast(pl.UInt32).alias("_histogram"))
    target = pl.struct("service", "instance_id", "column").rank("dense").cast(pl.UInt32)
    # Series numbered in (target, histogram, le) order: samples sorted by series then hold each
    # histogram's buckets in le order, which the cumulative check and the quantiles need.
    return (
        table.with_columns(target.alias("target"))
        .sort("target", "_histogram", "le", "series", nulls_last=True)
        .with_columns(pl.col("series").alias("_raw_series"))
        .with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("series"))
    ), notes


def _services(table: pl.DataFrame, service: str | None, source: str) -> tuple[pl.DataFrame, dict]:
    """Each series' ``service``: the one given, else its labels' (:data:`cat.SERVICE_LABELS`),
    else its instance's (a GPU or readiness series carries no model), else the load's only one.

    Raises
    ------
    IngestError
        When series are read but none names a service and none was given.
    """
    if service:
        return table.with_columns(pl.lit(service).alias("service")), {}
    labelled = pl.coalesce(*cat.SERVICE_LABELS)
    used = table.filter(pl.col("_skip").is_null())
    named = used.filter(labelled.is_not_null())
    if used.height and named.height == 0:
        raise no_service(source)
    per_instance = (
        named.filter(pl.col("instance_id").is_not_null())
        .group_by("instance_id")
        .agg(labelled.unique().alias("_services"))
        .filter(pl.col("_services").list.len() == 1)
        .select("instance_id", pl.col("_services").list.first().alias("_of_instance"))
    )
    table = table.join(per_instance, on="instance_id", how="left").with_columns(
        pl.coalesce(labelled, pl.col("_of_instance")).alias("service")
    )
    services = named.select(labelled).unique().to_series().to_list()
    if len(services) == 1:
        table = table.with_columns(pl.col("service").fill_null(services[0]))
    found = [label for label in cat.SERVICE_LABELS if used[label].is_not_null().any()]
    inherited = table.filter(pl.col("_skip").is_null() & labelled.is_null()).height
    note = f"from the {', '.join(found)} label" + ("s" if len(found) > 1 else "")
    if inherited:
        note += f"; {inherited} series without one (GPU, readiness) take their pod's"
    return table.drop("_of_instance"), {"service": note}


def _sample_frame(raw: RawSamples, series: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The samples as integers and floats in file order: source (index into the returned
    sorted names), line, series (renumbered as in ``series``), ts, value."""
    names = sorted(set(raw.sources))
    ranks = pl.Series([names.index(s) for s in raw.sources], dtype=pl.UInt32)
    frame = raw.samples.select(
        pl.lit(ranks).gather(pl.col("source")).alias("source"),
        "line",
        renumber(pl.col("series"), series["_raw_series"], series["series"]),
        "ts",
        "value",
    )
    ordered = frame.select(
        (
            (pl.col("source") > pl.col("source").shift(1))
            | (
                (pl.col("source") == pl.col("source").shift(1))
                & (pl.col("line") > pl.col("line").shift(1))
            )
        ).all()
    ).item()
    return (frame if ordered else frame.sort("source", "line")), names


#: The only values a readiness sample can take: a NaN, an infinity or a 0.5 is not a state,
#: and averaged into the interval it would make readiness up (or null it) instead of failing.
READY_VALUES = (0.0, 1.0)


def _sample_checks(
    frame: pl.DataFrame, series: pl.DataFrame
) -> tuple[pl.DataFrame, list[pl.DataFrame], bool]:
    """Samples that pass every per-sample check, sorted by series (then file order); the
    others with their ``_reason`` (a skip reason for series no signal is read from, first); and
    whether the survivors are sorted by (series, ts).

    In file order within each series, strictly increasing times rule out duplicates and
    out-of-order samples at once; only otherwise are those two (costlier) checks run.
    """
    value = pl.col("value")
    skip = _of_series(series["_skip"])
    series_reason = _of_series(series["_reason"])
    ready = _of_series((series["column"] == "ready").fill_null(False))
    not_ready_value = ready & ~value.is_in(READY_VALUES)
    # Nearly every sample passes: one boolean pass finds them, and only the others are given
    # a reason (a string column over every sample would cost more than the checks).
    passes = (
        skip.is_null()
        & series_reason.is_null()
        & value.is_finite()
        & (value >= 0)
        & ~not_ready_value
    )
    passing = frame.select(passes).to_series()
    reason = (
        pl.when(skip.is_not_null())
        .then(skip)
        .when(series_reason.is_not_null())
        .then(series_reason)
        .when(not_ready_value)
        .then(pl.lit("invalid_readiness"))
        .when(~value.is_finite())
        .then(pl.lit("non_finite_value"))
        .when((value < 0) & (_of_series(series["kind"]) != "gauge"))
        .then(pl.lit("negative_counter"))
        .when(value < 0)
        .then(pl.lit("negative_value"))
    )
    problems = [frame.filter(~passing).with_columns(reason.alias("_reason"))]
    frame = frame.filter(passing).sort("series", maintain_order=True)
    same = pl.col("series") == pl.col("series").shift(1)
    ordered = not frame.select((same & (pl.col("ts") <= pl.col("ts").shift(1))).any()).item()
    if ordered:
        return frame, problems, True
    duplicate = ~pl.struct("series", "ts").is_first_distinct()
    problems.append(
        frame.filter(duplicate).with_columns(pl.lit("duplicate_sample").alias("_reason"))
    )
    frame = frame.filter(~duplicate)
    late = pl.col("ts") < pl.col("ts").cum_max().shift(1).over("source", "series")
    problems.append(
        frame.filter(late).with_columns(pl.lit("out_of_order_timestamp").alias("_reason"))
    )
    return frame.filter(~late.fill_null(False)), problems, False


def _chosen(frame: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Each series with samples left and whether it is read (``chosen``): per instance and
    column the catalog's first name present wins, the others are superseded."""
    alive = series.filter(pl.col("series").is_in(frame["series"].unique().implode()))
    best = pl.col("priority").min().over("service", "instance_id", "column")
    return alive.select("series", (pl.col("priority") == best).alias("chosen"))


def _cumulative(buckets: pl.DataFrame, series: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bucket samples whose histogram is cumulative at their timestamp, and the samples of
    each (histogram, timestamp) where a larger ``le`` counts fewer observations.

    ``buckets`` is sorted by series, numbered in (target, histogram, le) order: each bucket's
    samples follow those of the bucket below it. When the two have the same timestamps (a
    scrape writes every bucket of a histogram at once, so nearly always), sample ``i`` of a
    bucket is compared with sample ``i`` of the one below, in one pass over numpy arrays;
    otherwise the samples are stably sorted by time first, which puts each histogram's buckets
    at one timestamp side by side in ``le`` order.
    """
    if buckets.height == 0:
        return buckets, buckets
    ids = buckets["series"].to_numpy()
    of_series = series["_histogram"].fill_null(0).to_numpy()
    at = buckets["ts"].dt.epoch("us").to_numpy()
    value = buckets["value"].to_numpy()
    starts = np.flatnonzero(np.diff(ids, prepend=-1))  # first row of each bucket series
    lengths = np.diff(starts, append=len(ids))
    histograms = of_series[ids[starts]]
    # Rows back from each bucket's samples to those of the bucket below (0: none below).
    below = np.zeros(len(starts), dtype=np.int64)
    below[1:] = np.where(histograms[1:] == histograms[:-1], lengths[:-1], 0)
    step = np.repeat(below, lengths)
    rows = np.flatnonzero(step)
    partner = rows - step[rows]
    histogram = of_series[ids]
    aligned = (below[1:] == 0) | (lengths[1:] == lengths[:-1])
    if not (aligned.all() and (at[rows] == at[partner]).all()):
        order = np.argsort(at, kind="stable")
        histogram, at, value = histogram[order], at[order], value[order]
        rows = np.flatnonzero((histogram[1:] == histogram[:-1]) & (at[1:] == at[:-1])) + 1
        partner = rows - 1
    falls = rows[value[rows] < value[partner]]
    if len(falls) == 0:
        return buckets, buckets.clear()
    broken = pl.DataFrame(
        {"_histogram": histogram[falls], "_at": at[falls]},
        schema={"_histogram": pl.UInt32, "_at": pl.Int64},
    ).unique()
    tagged = buckets.with_columns(
        _of_series(series["_histogram"]).alias("_histogram"),
        pl.col("ts").dt.epoch("us").alias("_at"),
    )
    keys = ["_histogram", "_at"]
    return (
        tagged.join(broken, on=keys, how="anti", maintain_order="left").drop(keys),
        tagged.join(broken, on=keys, how="semi", maintain_order="left").drop(keys),
    )


DETAILS = {
    "invalid_readiness": pl.format("readiness value {} is neither 0 nor 1", "value"),
    "non_finite_value": pl.format("value {}", "value"),
    "negative_counter": pl.format("counter value {}", "value"),
    "negative_value": pl.format("gauge value {}", "value"),
    "duplicate_sample": pl.format("a second sample at {}", "ts"),
    "out_of_order_timestamp": pl.format("{} is earlier than an earlier line's timestamp", "ts"),
    "non_cumulative_histogram": pl.lit(
        "a larger le counts fewer observations than a smaller one at this time"
    ),
}


def _set_aside(
    problems: list[pl.DataFrame], series: pl.DataFrame, sources: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Quarantine rows for the failing samples, located by series (a broken histogram by
    histogram and time), and skipped rows for the samples of series no signal is read from."""
    columns = ["source", "line", "series", "ts", "value", "_reason"]
    every = pl.concat([p.select(columns) for p in problems])
    if every.height == 0:
        return quarantine.empty(), skipped.empty()
    every = (
        every.sort("source", "line")
        .with_columns(
            pl.col("source").replace_strict(
                list(range(len(sources))), sources, return_dtype=pl.String
            )
        )
        .join(
            series.select("series", "metric", "name", "column", "_detail", "_histogram_name"),
            on="series",
        )
    )
    aside = every.filter(pl.col("_reason").is_in(list(skipped.REASONS)))
    set_aside = [
        skipped.rows(group, source=name, reason=reason, metric=pl.col("metric"))
        for (name, reason), group in aside.group_by("source", "_reason", maintain_order=True)
    ]
    parts = []
    bad = every.filter(~pl.col("_reason").is_in(list(skipped.REASONS)))
    for (reason,), group in bad.group_by("_reason", maintain_order=True):
        detail = pl.col("_detail")
        if reason in DETAILS:
            detail = pl.coalesce(detail, DETAILS[reason])
        location = pl.col("name")
        if reason == "non_cumulative_histogram":
            location = pl.format("{} at {}", "_histogram_name", "ts")
        parts.append(
            quarantine.rows(
                group,
                source=pl.col("source"),
                location=location,
                reason=reason,
                detail=detail,
                raw=pl.format("line {}: {} {}", "line", "name", "value"),
            )
        )
    return pl.concat([quarantine.empty(), *parts]), pl.concat([skipped.empty(), *set_aside])


def sum_present(column: str) -> pl.Expr:
    """The sum of the non-null values, null (not 0) when there are none: no data is not zero."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum())


def _of_series(column: pl.Series) -> pl.Expr:
    """A per-series attribute for each sample: series are numbered by their row in the series
    table, so this is a gather by position, not a join."""
    return pl.lit(column).gather(pl.col("series")).alias(column.name)


def _by_interval(frame: pl.DataFrame, bin_us: int) -> pl.DataFrame:
    """``frame`` stably sorted by its interval ``ts``. Interval numbers are small integers:
    when they span fewer than 2**16 (11 days of 15 s intervals), numpy's radix sort does it in
    linear time, in about a third of the time of polars' comparison sort."""
    number = frame.select((pl.col("ts") - pl.col("ts").min()).dt.total_microseconds() // bin_us)
    keys = number.to_series()
    if keys.len() and keys.max() < 1 << 16:
        return frame[np.argsort(keys.cast(pl.UInt16).to_numpy(), kind="stable")]
    return frame.sort("ts", maintain_order=True)


def _bin(at: pl.Expr, bin_us: int) -> pl.Expr:
    """The start of the interval holding ``at`` (intervals aligned to the Unix epoch), in
    integer microseconds: the same as ``dt.truncate`` for a fixed length, much cheaper."""
    micros = at.dt.epoch("us")
    return (micros - micros % bin_us).cast(pl.Datetime("us", "UTC"))


def _rollup(per_series: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """One value per (service, instance, column, interval) from the series' interval values:
    the mean or the sum (catalog ``rollup``) of the values present, null when none is."""
    present = pl.col("value").is_not_null()
    rolled = (
        per_series.group_by("target", "ts")
        .agg(
            pl.when(present.any()).then(pl.col("value").sum()).alias("sum"),
            pl.when(present.any()).then(pl.col("value").mean()).alias("mean"),
            pl.col("rows").sum(),
        )
        .join(targets, on="target")
    )
    value = pl.when(pl.col("rollup") == "mean").then(pl.col("mean")).otherwise(pl.col("sum"))
    return rolled.select("service", "instance_id", "column", "ts", value.alias("value"), "rows")


def _per_interval(frame: pl.DataFrame, one: list[pl.Expr], many: list[pl.Expr]) -> pl.DataFrame:
    """Per (series, interval ``ts``) values of ``frame`` sorted by (series, ts), in that order:
    ``one`` of the interval's row where it holds one (as when scrape and interval match), the
    ``many`` aggregations where it holds several.

    The result has a row per interval, taken at each interval's last row; only the intervals
    holding several rows are grouped (a series' first two samples often share one), and their
    values are written over those rows by position (interval ``k`` is row ``k``), so the
    bulk of the rows is neither grouped nor re-sorted.
    """
    same = (pl.col("series") == pl.col("series").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
    attributes = [c for c in ("series", "target", "le", "ts") if c in frame.columns]
    interval = pl.col("_interval")
    frame = frame.with_columns(((~same.fill_null(False)).cum_sum() - 1).alias("_interval"))
    last = (interval != interval.shift(-1)).fill_null(True)
    shared = ((interval == interval.shift(1)) | (interval == interval.shift(-1))).fill_null(False)
    lazy = frame.lazy()
    out = lazy.filter(last).select(*attributes, *one).collect()
    grouped = lazy.filter(shared).group_by("_interval").agg(*many).collect()
    if grouped.height == 0:
        return out
    at = grouped["_interval"]
    return out.with_columns(
        out[c].scatter(at, grouped[c].cast(out.schema[c])) for c in grouped.columns[1:]
    )


def _gauges(frame: pl.DataFrame, bin_us: int) -> pl.DataFrame:
    """Interval means per series (their instance rollup follows in :func:`_rollup`)."""
    return _per_interval(
        frame.with_columns(_bin(pl.col("ts"), bin_us)),
        [pl.col("value"), pl.lit(1, pl.Int64).alias("rows")],
        [pl.col("value").mean(), pl.len().cast(pl.Int64).alias("rows")],
    )


def _rates(frame: pl.DataFrame, bin_us: int, max_gap: timedelta) -> tuple[pl.DataFrame, int, int]:
    """Per-series rates per interval of counters and histogram buckets, resets and gaps counted.

    ``frame`` is sorted by (series, ts), so a sample's predecessor is the row above it when
    that row is of the same series.
    """
    same = pl.col("series") == pl.col("series").shift(1)
    micros = pl.col("ts").dt.epoch("us")
    counted = frame.with_columns(
        pl.when(same).then(pl.col("value").shift(1)).alias("previous"),
        pl.when(same).then(micros - micros.shift(1)).alias("step_us"),
    )
    gap = pl.col("step_us") > max_gap // timedelta(microseconds=1)
    reset = pl.col("value") < pl.col("previous")
    start = pl.col("previous").is_null() | gap
    # Increases count for the interval holding the midpoint of their two samples.
    at = pl.when(start).then(micros).otherwise(micros - pl.col("step_us") + pl.col("step_us") // 2)
    counted = counted.with_columns(
        pl.when(start)
        .then(None)
        .when(reset)
        .then(pl.col("value"))
        .otherwise(pl.col("value") - pl.col("previous"))
        .alias("increase"),
        (at - at % bin_us).cast(pl.Datetime("us", "UTC")).alias("at_bin"),
        pl.when(~start).then(pl.col("step_us") / 1e6).alias("elapsed"),
        (reset & ~gap.fill_null(False)).alias("reset"),
        gap.fill_null(False).alias("gap"),
    )
    resets, gaps = counted.select(pl.col("reset").sum(), pl.col("gap").sum()).row(0)
    rated = _per_interval(
        counted.drop("ts").rename({"at_bin": "ts"}),
        [
            (pl.col("increase") / pl.col("elapsed")).alias("value"),
            pl.lit(1, pl.Int64).alias("rows"),
        ],
        [
            pl.when(pl.col("increase").is_not_null().any())
            .then(pl.col("increase").sum() / pl.col("elapsed").sum())
            .alias("value"),
            pl.len().cast(pl.Int64).alias("rows"),
        ],
    )
    return rated, int(resets or 0), int(gaps or 0)


def _one_histogram_per_target(series: pl.DataFrame) -> bool:
    """Whether every instance's latency column comes from one histogram (one engine), so that
    each bucket rate already is its instance's sum."""
    counts = (
        series.filter(pl.col("kind") == "histogram")
        .group_by("target")
        .agg(pl.col("_histogram").n_unique().alias("histograms"))
    )
    return counts.height == 0 or counts["histograms"].max() == 1


def _quantiles(
    buckets: pl.DataFrame, targets: pl.DataFrame, source: str, bin_us: int, one_histogram: bool
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    """p50/p90/p99 signal values per instance interval, histograms without ``+Inf``, and
    notes on the histograms whose bucket rates had to be made monotonic."""
    keys = ["target", "ts"]
    # Rows arrive sorted by series, numbered in (target, histogram, le) order, then ts. With
    # one histogram per instance each row already is its bucket's sum, and a stable sort by ts
    # makes every histogram's buckets contiguous and in le order.
    if one_histogram:
        summed = _by_interval(
            buckets.select(*keys, "le", pl.col("value").alias("count"), "rows"), bin_us
        )
    else:
        summed = (
            buckets.group_by(*keys, "le")
            .agg(sum_present("value").alias("count"), pl.col("rows").sum())
            .sort(*keys, "le")
        )
    # Histograms are contiguous now: one integer numbers them, a sorted key to group by.
    new = pl.any_horizontal(pl.col(k) != pl.col(k).shift(1) for k in keys).fill_null(True)
    summed = summed.with_columns(new.cum_sum().set_sorted().alias("_histogram"))
    groups = summed.group_by("_histogram", maintain_order=True).agg(
        *(pl.col(k).first() for k in keys),
        pl.col("rows").sum(),
        pl.col("le").is_infinite().any().alias("complete"),
    )
    falls = (pl.col("_histogram") == pl.col("_histogram").shift(1)) & (
        pl.col("count") < pl.col("count").shift(1)
    )
    repaired = (
        summed.filter(falls.fill_null(False))
        .group_by("target")
        .agg(pl.col("ts").n_unique().alias("intervals"))
        .join(targets, on="target")
        .sort("column", "instance_id")
    )
    notes = {
        f"{column} of {instance}": f"{n} intervals: bucket rates made monotonic in le, as "
        "histogram_quantile does (a bucket sample quarantined, or a reset)"
        for column, instance, n in repaired.select("column", "instance_id", "intervals").rows()
    }
    quantiles = histogram_quantiles(
        summed.filter(pl.col("count").is_not_null()).select("_histogram", "le", "count"),
        ["_histogram"],
        cat.QUANTILES,
        grouped=True,
    )
    incomplete = groups.filter(~pl.col("complete")).join(targets, on="target")
    bad = quarantine.rows(
        incomplete,
        source=source,
        location=pl.format("{} of {} at {}", "column", "instance_id", "ts"),
        reason="malformed_histogram",
        detail='no le="+Inf" bucket',
        count=pl.col("rows"),
    )
    good = (
        groups.filter(pl.col("complete"))
        .join(quantiles, on="_histogram", how="left")
        .join(targets, on="target")
    )
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
    return values, bad, notes


def _attributes(series: pl.DataFrame) -> pl.DataFrame:
    """Role, GPU type and GPU count of each instance, from whichever of its series carry them."""
    instance_level = series.filter(pl.col("level") == "instance").sort("series")
    return instance_level.group_by("service", "instance_id").agg(
        pl.coalesce(*cat.ROLE_LABELS).drop_nulls().unique().sort().alias("roles"),
        pl.col("gpu_model").drop_nulls().first().alias("gpu_type"),
        pl.coalesce(*cat.GPU_LABELS).drop_nulls().n_unique().alias("gpus_per_instance"),
    )
