"""Per-role time series of the candidate signals, the unit the signal study and controllers read.

The paper judges signals at the level of a role (all prefill or all decode instances of a
service), not of one instance (§5.3.2, Fig. 2): a throughput is the pool's total, a gauge the
pool's average.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from telemetry.schema import (
    INSTANCE_METRIC_COLUMNS,
    INSTANCE_SAMPLES,
    INSTANCE_SAMPLES_SCHEMA,
    SchemaError,
    conform,
)

#: Throughputs add up across a pool: the pool's rate is the sum of its instances' rates.
SUM_SIGNALS = ("prefill_tps_cache_missed", "prefill_tps_total", "decode_tps")

#: Every other candidate signal (utilisation, queues, KV usage, latency quantiles) is averaged.
MEAN_SIGNALS = tuple(c for c in INSTANCE_METRIC_COLUMNS if c not in SUM_SIGNALS)

#: All candidate signals, in schema order.
SIGNALS = tuple(INSTANCE_METRIC_COLUMNS)

SERIES_KEY = ("ts", "service", "role")


def role_series(instance_samples: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Aggregate every candidate signal per (ts, service, role) over the ready instances.

    Parameters
    ----------
    instance_samples : pl.DataFrame or pl.LazyFrame
        The canonical ``instance_samples`` table. A DataFrame is checked with
        ``telemetry.schema.conform``. A LazyFrame (e.g. ``pl.scan_parquet`` over a week of
        exports) is aggregated in one streaming pass without being held in memory whole; see
        Notes for what is checked then.

    Returns
    -------
    pl.DataFrame
        One row per (ts, service, role), sorted by service, role, ts, with ``interval_s``,
        ``instances`` (all instances reporting), ``ready_instances`` and one column per signal:
        the sum over ready instances for :data:`SUM_SIGNALS`, the mean of the non-null values
        over ready instances for :data:`MEAN_SIGNALS`.

    Raises
    ------
    ValueError
        If instances of one (ts, service, role) report different ``interval_s``.

    Notes
    -----
    Instances that are starting or draining (``ready`` false) serve nothing and would dilute the
    averages, so only ready instances enter the signals; they are still counted in
    ``instances``. A group with no ready instance keeps its row: its throughputs are 0 and its
    averages null. A latency quantile averaged over instances is the mean of the instances'
    quantiles, not the pool's quantile (which per-instance quantiles cannot give); it is null
    where no ready instance produced that latency, e.g. TTFT on decode instances.

    Both inputs go through the same aggregation query, so the rules above have one home. A
    week of 1,000 instances at 15 s is 40 million rows, several GB as one frame; a LazyFrame
    streams them, so memory holds only the per-group results. Its columns are selected and
    strictly cast to the canonical types (a missing column raises ``SchemaError``, a wrong
    type at collection), but its values are not checked the way ``conform`` checks them
    (nulls in identity columns, ranges, one row per instance and interval): that would take
    the whole table or a second pass. Pass a LazyFrame only over data already checked, such
    as files written from the store or from ``conform``'s output.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2, the metrics-driven scaling study, and its Fig. 2.
    """
    if isinstance(instance_samples, pl.LazyFrame):
        samples = _canonical_lazy(instance_samples)
    else:
        samples = conform(instance_samples, INSTANCE_SAMPLES).lazy()
    ready = pl.col("ready")
    series = (
        # Signals of instances that are not ready become null, which sums and means skip: the
        # same as filtering each group, but plain aggregations that the streaming engine runs
        # in its fast path (a week of 1,000 instances in a third of the time).
        samples.with_columns(pl.when(ready).then(pl.col(c)).alias(c) for c in SIGNALS)
        .group_by(*SERIES_KEY)
        .agg(
            pl.col("interval_s").max(),
            pl.col("interval_s").n_unique().alias("interval_variants"),
            pl.len().cast(pl.Int64).alias("instances"),
            ready.sum().cast(pl.Int64).alias("ready_instances"),
            *[pl.col(c).sum() for c in SUM_SIGNALS],
            *[pl.col(c).mean() for c in MEAN_SIGNALS],
        )
        .collect(engine="streaming")
        .sort("service", "role", "ts")
    )
    mixed = series.filter(pl.col("interval_variants") > 1)
    if mixed.height:
        first = mixed.row(0, named=True)
        raise ValueError(
            f"instance_samples: {mixed.height} (ts, service, role) groups mix interval_s values, "
            f"first at ts={first['ts']} service={first['service']!r} role={first['role']!r}"
        )
    return series.select(*SERIES_KEY, "interval_s", "instances", "ready_instances", *SIGNALS)


def _canonical_lazy(instance_samples: pl.LazyFrame) -> pl.LazyFrame:
    """The canonical columns of a lazy ``instance_samples``, strictly cast; values unchecked."""
    present = instance_samples.collect_schema()
    missing = [c for c in INSTANCE_SAMPLES_SCHEMA if c not in present]
    if missing:
        raise SchemaError(f"{INSTANCE_SAMPLES}: missing columns {missing}")
    return instance_samples.select(
        pl.col(c).cast(dtype, strict=True) for c, dtype in INSTANCE_SAMPLES_SCHEMA.items()
    )


def resample(frame: pl.DataFrame, window_s: float, by: Sequence[str]) -> pl.DataFrame:
    """Duration-weighted means of every value column of ``frame`` over ``window_s`` windows.

    Parameters
    ----------
    frame : pl.DataFrame
        Rows keyed by ``ts`` (interval start) and ``by``, with ``interval_s`` and value columns
        that are rates or gauges (a role series, or ``service_load``).
    window_s : float
        Window length; windows are aligned to multiples of it since the Unix epoch.
    by : sequence of str
        Key columns kept apart, e.g. ``("service", "role")``.

    Returns
    -------
    pl.DataFrame
        One row per (window start, *by), sorted by ``by`` then ``ts``, with ``interval_s`` the
        covered seconds and each value column the mean weighted by ``interval_s`` over its
        non-null values (null when it has none).

    Notes
    -----
    A rate averaged by duration is the window's rate, and a time-averaged gauge stays
    time-averaged, so the study can judge signals at the timescale a controller acts on
    instead of the sampling one. Latency quantiles are averaged the same way: an
    approximation, since quantiles do not compose.
    """
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    weight = pl.col("interval_s")
    values = [c for c in frame.columns if c not in ("ts", "interval_s", *by)]

    def weighted_mean(column: str) -> pl.Expr:
        covered = weight.filter(pl.col(column).is_not_null()).sum()
        return pl.when(covered > 0).then((pl.col(column) * weight).sum() / covered).alias(column)

    return (
        frame.with_columns(pl.col("ts").dt.truncate(f"{round(window_s * 1e6)}us"))
        .group_by("ts", *by)
        .agg(weight.sum(), *[weighted_mean(c) for c in values])
        .sort(*by, "ts")
        .select(frame.columns)
    )
