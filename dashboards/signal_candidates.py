"""Which candidates of the signal study the figures show, and how the page names them.

The study ranks every signal of every role (and GPU type); a figure of all of them hides the
few a reader needs. The figures show the top-ranked candidates and the contrasts the paper
draws (§5.3.2), whatever rank the data gave those, so the reader can check the paper's claims
on this data. Naming the contrasts here is a choice of what to show, not of what wins: the
classifier (:mod:`signals.classify`) still names no signal.
"""

from __future__ import annotations

import math

import polars as pl

#: How many of the best-ranked whole-role candidates a figure shows.
TOP = 3

#: The paper's contrasts (§5.3.2): decode throughput tracks load while decode GPU utilisation
#: and SM activity stay busy at light load; prefill throughput with prefix-cache hits is less
#: reliable than without; TTFT is noisier than TBT and both are cliff-like.
PAPER_CONTRASTS = (
    ("decode", "decode_tps"),
    ("decode", "gpu_util_ratio"),
    ("decode", "sm_active_ratio"),
    ("prefill", "prefill_tps_cache_missed"),
    ("prefill", "prefill_tps_total"),
    ("prefill", "ttft_p99_s"),
    ("decode", "tbt_p99_s"),
)


def ranked(signal_study: pl.DataFrame) -> pl.DataFrame:
    """The study's candidates in rank order.

    Raises
    ------
    ValueError
        If the table holds several services: ranks are per service, so one list of them would
        interleave two rankings.
    """
    services = signal_study["service"].unique().to_list()
    if len(services) > 1:
        raise ValueError(f"the signal study holds services {sorted(services)}: pass one")
    return signal_study.sort("rank")


def whole_roles(signal_study: pl.DataFrame) -> pl.DataFrame:
    """The candidates of whole roles (``gpu_type`` null), in rank order: the per-interval
    series the figures draw are a role's, over every GPU type."""
    return ranked(signal_study).filter(pl.col("gpu_type").is_null())


def shown(signal_study: pl.DataFrame, top: int = TOP) -> pl.DataFrame:
    """The ``top`` best-ranked whole-role candidates and those of :data:`PAPER_CONTRASTS` the
    study has, in rank order."""
    roles = whole_roles(signal_study)
    contrast = pl.concat_str("role", "signal", separator=" ").is_in(
        [f"{role} {signal}" for role, signal in PAPER_CONTRASTS]
    )
    return roles.with_row_index("_order").filter((pl.col("_order") < top) | contrast).drop("_order")


def label(candidate: dict) -> str:
    """``decode decode_tps``, with ``on L20`` for a candidate of one GPU type."""
    name = f"{candidate['role']} {candidate['signal']}"
    return f"{name} on {candidate['gpu_type']}" if candidate.get("gpu_type") else name


def series_of(signal_series: pl.DataFrame, role: str) -> pl.DataFrame:
    """A whole role's intervals of the study's paired series, in time order (rows of one GPU
    type, where the series carries them, are left out)."""
    rows = signal_series.filter(pl.col("role") == role)
    if "gpu_type" in rows.columns:
        rows = rows.filter(pl.col("gpu_type").is_null())
    return rows.sort("ts")


def finite(value: float | None) -> bool:
    """A value the figures can draw: the store keeps an undefined statistic as null or NaN."""
    return value is not None and math.isfinite(value)
