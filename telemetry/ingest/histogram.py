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
    # Counts are made monotonic in le; a window is needed only where they are not already.
    if ordered.select((same & (pl.col("count") < pl.col("count").shift(1))).any()).item():
        ordered = ordered.with_columns(pl.col("count").cum_max().over(keys))
    ordered = ordered.with_columns(
        pl.when(same).then(pl.col("le").shift(1)).alias("lower"),
        pl.when(same).then(pl.col("count").shift(1)).otherwise(0.0).alias("below"),
    )
    total = pl.col("count").last()
    located = {
        name: (pl.col("count") >= pl.lit(q) * total) & (total > 0) for name, q in quantiles.items()
    }
    found = ordered.group_by(keys, maintain_order=True).agg(
        pl.col("le").is_infinite().any().alias("_complete"),
        total.alias("_total"),
        pl.col("le").filter(pl.col("le").is_finite()).max().alias("_top"),
        *(
            pl.col(c).filter(where).first().alias(f"{name}_{c}")
            for name, where in located.items()
            for c in ("le", "lower", "below", "count")
        ),
    )
    values = []
    for name, q in quantiles.items():
        le, lower, below, count = (pl.col(f"{name}_{c}") for c in ("le", "lower", "below", "count"))
        inside = (pl.lit(q) * pl.col("_total") - below) / (count - below)
        values.append(
            pl.when(le.is_infinite())
            .then(pl.col("_top"))
            .when(lower.is_null() & (le <= 0))
            .then(le)
            .otherwise(lower.fill_null(0.0) + (le - lower.fill_null(0.0)) * inside.fill_nan(1.0))
            .alias(name)
        )
    return found.filter(pl.col("_complete")).select(*keys, *values)
