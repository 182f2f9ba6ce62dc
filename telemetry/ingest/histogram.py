"""Quantiles from cumulative histogram buckets, interpolated the way PromQL does it.

One home for the formula: the exposition reader calls it on bucket rates, and the tests check
it against a real Prometheus's ``histogram_quantile`` through the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl


def histogram_quantiles(
    buckets: pl.DataFrame,
    by: Sequence[str],
    quantiles: Mapping[str, float],
    *,
    grouped: bool = False,
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
    grouped : bool
        The caller guarantees each histogram's rows are contiguous and in ascending ``le``
        order, which spares the sort.

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
    same = pl.all_horizontal(pl.col(k) == pl.col(k).shift(1) for k in keys)
    # Two single-key sorts (le, then stably a hash of the keys) are much cheaper than one
    # sort on all keys; a hash shared by two histograms (checked) falls back to the latter.
    if grouped:
        ordered = buckets
    else:
        hashed = pl.struct(keys).hash().alias("_histogram")
        ordered = buckets.sort("le").with_columns(hashed).sort("_histogram", maintain_order=True)
        collided = (pl.col("_histogram") == pl.col("_histogram").shift(1)) & ~same
        if ordered.select(collided.any()).item():
            ordered = buckets.sort(*keys, "le")
    # Each histogram's rows are now contiguous: one integer numbers them, and per-histogram
    # figures come from neighbouring rows instead of a group-by.
    ordered = ordered.with_columns(same.fill_null(False).alias("_same")).with_columns(
        (~pl.col("_same")).cum_sum().alias("_group")
    )
    same = pl.col("_same")
    last = (pl.col("_group") != pl.col("_group").shift(-1)).fill_null(True)
    # Counts are made monotonic in le; a window is needed only where they are not already.
    if ordered.select((same & (pl.col("count") < pl.col("count").shift(1))).any()).item():
        ordered = ordered.with_columns(pl.col("count").cum_max().over("_group"))
    le, count = pl.col("le"), pl.col("count")
    infinite = le.is_infinite().cast(pl.Int64).cum_sum()
    finite = pl.when(le.is_finite()).then(le)
    ordered = ordered.with_columns(
        pl.when(same).then(le.shift(1)).alias("lower"),
        pl.when(same).then(count.shift(1)).otherwise(0.0).alias("below"),
        pl.when(last).then(count).backward_fill().alias("_total"),
        # The last finite bound so far in this histogram (NaN: none yet).
        pl.when(~same & finite.is_null())
        .then(float("nan"))
        .otherwise(finite)
        .forward_fill()
        .alias("_top"),
        (infinite - pl.when(~same).then(infinite - le.is_infinite()).forward_fill()).alias(
            "_infinite"
        ),
    )
    out = ordered.filter(last).select(
        "_group", *keys, pl.col("_top").fill_nan(None), (pl.col("_infinite") > 0).alias("_complete")
    )
    for name, q in quantiles.items():
        rank = pl.lit(q) * pl.col("_total")
        located = (count >= rank) & (pl.col("_total") > 0)
        first = located & ~(same & located.shift(1)).fill_null(False)
        lower = pl.col("lower")
        inside = (rank - pl.col("below")) / (count - pl.col("below"))
        value = (
            pl.when(le.is_infinite())
            .then(pl.lit(None, pl.Float64))
            .when(lower.is_null() & (le <= 0))
            .then(le)
            .otherwise(lower.fill_null(0.0) + (le - lower.fill_null(0.0)) * inside.fill_nan(1.0))
        )
        at = ordered.filter(first).select(
            "_group", value.alias(name), le.is_infinite().alias("_inf")
        )
        out = (
            out.join(at, on="_group", how="left")
            .with_columns(
                pl.when(pl.col("_inf")).then(pl.col("_top")).otherwise(pl.col(name)).alias(name)
            )
            .drop("_inf")
        )
    return out.filter(pl.col("_complete")).select(*keys, *quantiles)
