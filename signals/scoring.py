"""Score each candidate signal against offered load: the paper's signal study as numbers.

The paper asks of a scaling signal that it track load linearly with a high signal-to-noise ratio
and that it fall when load falls, so that the pool can scale in (§5.3.2). Each statistic here
measures one of those properties, per (service, role, signal).
"""

from __future__ import annotations

import logging

import polars as pl

from signals.aggregate import SIGNALS, resample, role_series
from telemetry.schema import SERVICE_LOAD, SERVICE_LOAD_SCHEMA, conform

logger = logging.getLogger(__name__)

SCORE_KEY = ("service", "role", "signal")

#: Offered-load columns of ``service_load`` a signal can be judged against.
LOAD_COLUMNS = tuple(c for c in SERVICE_LOAD_SCHEMA if c not in ("ts", "interval_s", "service"))

#: The offered load each role serves: prompt tokens for prefill, generated tokens for decode,
#: requests for an engine doing both. Input and output lengths are nearly independent in real
#: traces (Spearman 0.07 on Azure 2023), so one role's load says little about the other's.
ROLE_LOAD = {"prefill": "input_tps", "decode": "output_tps", "colocated": "request_rate_rps"}

#: Below this many paired intervals a correlation means nothing (two points always lie on a line).
MIN_INTERVALS_FOR_CORRELATION = 3

#: Share of intervals at each end of the load range compared by ``scale_in_response``.
LOAD_QUINTILE = 0.2


def score_signals(
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    *,
    load_column: str | None = None,
    window_s: float | None = None,
) -> pl.DataFrame:
    """Score every candidate signal of every role against the service's offered load.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table; aggregated with :func:`signals.role_series`.
    service_load : pl.DataFrame
        The canonical ``service_load`` table, joined to the role series on (ts, service).
    load_column : str, optional
        The offered-load column every role is judged against, one of :data:`LOAD_COLUMNS`;
        by default each role's own load (:data:`ROLE_LOAD`).
    window_s : float, optional
        Judge signals over windows of this length (:func:`signals.resample`), e.g. the
        controller's period; by default at the sampling interval.

    Returns
    -------
    pl.DataFrame
        One row per (service, role, signal), sorted by those keys, with

        - ``load_column``: the offered load the row was judged against;
        - ``n_intervals``: intervals where both the signal and the load have a value;
        - ``pearson_r``, ``spearman_rho``: correlation of signal with load (linearity and
          monotonicity);
        - ``low_load_mean``, ``high_load_mean``: the signal's mean over the intervals in the
          bottom and the top quintile of load;
        - ``scale_in_response``: ``(high_load_mean - low_load_mean) / high_load_mean``, the share
          of its high-load value the signal gives up when load is low;
        - ``coefficient_of_variation``: sample standard deviation over mean of the signal.

    Raises
    ------
    ValueError
        If ``load_column`` is not an offered-load column, or no interval of the role series
        matches an interval of ``service_load``.

    Notes
    -----
    Pairs of role and signal with no value at all (e.g. TTFT on decode instances, whose
    engines emit no first token) are skipped; their number and names are logged at INFO.
    Rows that are kept carry null, never NaN, where a statistic is undefined: both
    correlations when fewer than :data:`MIN_INTERVALS_FOR_CORRELATION` intervals are paired or
    the signal or load is constant; ``scale_in_response`` when ``high_load_mean`` is 0;
    ``coefficient_of_variation`` when the mean is 0.

    The quintiles are taken by rank: with ``n`` intervals sorted by load (ties by ts), the
    lowest and highest ``max(1, floor(n/5))`` form the low and high groups, so both are non-empty
    and equally large.

    A signal that stays busy at low load, as the paper found for decode GPU utilisation, shows
    as ``scale_in_response`` near 0 even when its correlation with load is high.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2, the metrics-driven scaling study, Figs. 2 and 6.
    """
    if load_column is not None and load_column not in LOAD_COLUMNS:
        raise ValueError(f"load_column {load_column!r} is not one of {LOAD_COLUMNS}")
    load = conform(service_load, SERVICE_LOAD)
    series = role_series(instance_samples)
    if window_s is not None:
        load = resample(load, window_s, ("service",))
        series = resample(series, window_s, ("service", "role"))
    paired = series.join(load.drop("interval_s"), on=["ts", "service"], how="inner")
    judged_by = (
        pl.lit(load_column)
        if load_column is not None
        else pl.col("role").replace_strict(ROLE_LOAD, return_dtype=pl.String)
    )
    paired = paired.with_columns(load_column=judged_by).with_columns(
        load=pl.coalesce(pl.when(pl.col("load_column") == c).then(pl.col(c)) for c in LOAD_COLUMNS)
    )
    if paired.is_empty():
        raise ValueError("no (ts, service) of instance_samples matches a row of service_load")
    unmatched = (
        series.select("ts", "service").unique().height
        - paired.select("ts", "service").unique().height
    )
    if unmatched:
        logger.info("score_signals: %d intervals have no offered load and are left out", unmatched)

    values = (
        paired.unpivot(
            index=["service", "role", "ts", "load_column", "load"],
            on=list(SIGNALS),
            variable_name="signal",
            value_name="value",
        )
        .drop_nulls("value")
        .sort(*SCORE_KEY, "load", "ts")
        .with_columns(
            position=pl.int_range(pl.len()).over(SCORE_KEY),
            group_size=(pl.len() * LOAD_QUINTILE).floor().clip(lower_bound=1).over(SCORE_KEY),
            n=pl.len().over(SCORE_KEY),
        )
    )
    value = pl.col("value")
    # Exact test for a constant series: a floating-point correlation of one is noise, not NaN.
    correlatable = (
        (pl.len() >= MIN_INTERVALS_FOR_CORRELATION)
        & (value.n_unique() > 1)
        & (pl.col("load").n_unique() > 1)
    )
    scores = (
        values.group_by(*SCORE_KEY)
        .agg(
            pl.col("load_column").first(),
            pl.len().cast(pl.Int64).alias("n_intervals"),
            pl.when(correlatable).then(pl.corr(value, "load")).alias("pearson_r"),
            pl.when(correlatable)
            .then(pl.corr(value, "load", method="spearman"))
            .alias("spearman_rho"),
            value.filter(pl.col("position") < pl.col("group_size")).mean().alias("low_load_mean"),
            value.filter(pl.col("position") >= pl.col("n") - pl.col("group_size"))
            .mean()
            .alias("high_load_mean"),
            value.std().alias("value_std"),
            value.mean().alias("value_mean"),
        )
        .with_columns(
            pl.col("pearson_r", "spearman_rho").fill_nan(None),
            scale_in_response=_ratio_or_null(
                pl.col("high_load_mean") - pl.col("low_load_mean"), pl.col("high_load_mean")
            ),
            coefficient_of_variation=_ratio_or_null(pl.col("value_std"), pl.col("value_mean")),
        )
        .drop("value_std", "value_mean")
        .sort(*SCORE_KEY)
    )
    _log_skipped_pairs(paired, scores)
    return scores


def _ratio_or_null(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator``, null where the denominator is 0 (the ratio is undefined)."""
    return pl.when(denominator != 0).then(numerator / denominator)


def _log_skipped_pairs(paired: pl.DataFrame, scores: pl.DataFrame) -> None:
    """Log the (service, role, signal) pairs that had no value at all and so have no row."""
    candidates = (
        paired.select("service", "role")
        .unique()
        .join(pl.DataFrame({"signal": list(SIGNALS)}), how="cross")
    )
    skipped = candidates.join(scores, on=list(SCORE_KEY), how="anti").sort(*SCORE_KEY)
    if skipped.height:
        names = ", ".join("/".join(row) for row in skipped.iter_rows())
        logger.info("score_signals: skipped %d pairs with no values: %s", skipped.height, names)
