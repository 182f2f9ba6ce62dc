"""Quantiles from cumulative histogram buckets, interpolated the way PromQL does it.

One home for the formula: the exposition reader calls it on bucket rates, and the tests check
it against a real Prometheus's ``histogram_quantile`` through the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl


def histogram_quantiles(
    buckets: pl.DataFrame, by: Sequence[str], quantiles: Mapping[str, float]
) -> pl.DataFrame:
    """Quantiles of each histogram in ``buckets``, one column per entry of ``quantiles``.

    Parameters
    ----------
    buckets : pl.DataFrame
        One row per bucket: the ``by`` keys, ``le`` (upper bound, ``inf`` for the last) and
        ``count``, the cumulative count (or rate) of observations up to ``le``.
    by : sequence of str
        Columns that identify one histogram.
    quantiles : mapping of str to float
        Output column -> quantile in [0, 1].

    Returns
    -------
    pl.DataFrame
        One row per histogram that has a ``+Inf`` bucket: ``by`` plus one column per quantile,
        null when the histogram holds no observation.

    Notes
    -----
    As PromQL's ``histogram_quantile``: counts are first made monotonic in ``le`` (scrapes of
    buckets are not atomic), the rank ``q * total`` is located in the first bucket whose
    cumulative count reaches it, and the value is interpolated linearly inside that bucket,
    from 0 for the first bucket. A rank in the ``+Inf`` bucket returns the largest finite bound.
    Histograms without a ``+Inf`` bucket have no total and are left out: the caller
    quarantines them.

    References
    ----------
    Prometheus, ``promql/quantile.go`` (``bucketQuantile``), documented behaviour of
    ``histogram_quantile``.
    """
    keys = list(by)
    # One integer per histogram: sorting and windowing on it is much cheaper than on the keys.
    group = "_histogram"
    ordered = (
        buckets.with_columns(pl.struct(keys).rank("dense").alias(group))
        .sort(group, "le")
        .with_columns(pl.col("count").cum_max().over(group))
        .with_columns(
            pl.col("count").last().over(group).alias("total"),
            pl.col("le").is_infinite().any().over(group).alias("complete"),
            pl.col("le").shift(1).over(group).alias("lower"),
            pl.col("count").shift(1).over(group).fill_null(0.0).alias("below"),
            pl.col("le").filter(pl.col("le").is_finite()).max().over(group).alias("top"),
        )
        .filter(pl.col("complete"))
    )
    out = ordered.select(keys).unique(maintain_order=True)
    for name, q in quantiles.items():
        rank = pl.lit(q) * pl.col("total")
        located = (
            ordered.filter((pl.col("count") >= rank) & (pl.col("total") > 0))
            .group_by(group, maintain_order=True)
            .first()
        )
        inside = (rank - pl.col("below")) / (pl.col("count") - pl.col("below"))
        value = (
            pl.when(pl.col("le").is_infinite())
            .then(pl.col("top"))
            .when(pl.col("lower").is_null() & (pl.col("le") <= 0))
            .then(pl.col("le"))
            .otherwise(
                pl.col("lower").fill_null(0.0)
                + (pl.col("le") - pl.col("lower").fill_null(0.0)) * inside.fill_nan(1.0)
            )
        )
        out = out.join(located.select(*keys, value.alias(name)), on=keys, how="left")
    return out
