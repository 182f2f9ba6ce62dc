"""What the controller observes: the decode pool's total TPS per control window.

One home for the observation, so that the open-loop replay and the closed-loop backtest see
the same number from the same samples.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from signals import role_series


def decode_tps_windows(
    instance_samples: pl.DataFrame, *, service: str, start: datetime, control_interval_s: float
) -> pl.DataFrame:
    """The decode pool's observed total TPS in each control window with decode samples.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table (any subset of it).
    service : str
    start : datetime
        Start of window 0 (UTC).
    control_interval_s : float
        Window length.

    Returns
    -------
    pl.DataFrame
        Columns ``window`` (index from ``start``) and ``decode_tps_observed``, sorted by
        window: the duration-weighted mean over the window's samples of the pool's total
        decode TPS (a sample belongs to the window its ``ts``, its start, falls in). Windows
        without decode samples have no row: nothing was observed.
    """
    interval_us = round(control_interval_s * 1_000_000)
    decode = role_series(instance_samples).filter(
        (pl.col("service") == service) & (pl.col("role") == "decode")
    )
    return (
        decode.with_columns(
            window=(pl.col("ts") - start).dt.total_microseconds() // interval_us,
            tokens=pl.col("decode_tps") * pl.col("interval_s"),
        )
        .group_by("window")
        .agg(decode_tps_observed=pl.col("tokens").sum() / pl.col("interval_s").sum())
        .sort("window")
    )
