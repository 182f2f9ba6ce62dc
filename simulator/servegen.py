"""ServeGen per-client rate windows, and arrivals regenerated from them.

ServeGen (Xiang et al., arXiv 2505.09999; Alibaba Bailian) publishes no per-request log: for each
client and 10-minute window it gives the mean rate and a Gamma or Weibull fit of the
inter-arrival times. It is the only multi-day arrival source in reach, so multi-day workloads
are rebuilt from it: arrivals from the fitted gaps, lengths sampled from a real per-request trace
(:func:`servegen_requests`, on per-client windows), or the expected load of a service's summed
rate (:func:`load_servegen_rates`: 14 real days ship, read by the fluid fast mode).
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from simulator.paths import SERVEGEN_RATES_CSV_GZ, SERVEGEN_SLICE_CSV_GZ
from simulator.traces import (
    SYNTHETIC_EPOCH,
    Trace,
    TraceError,
    canonical_frame,
    default_trace,
    read_csv_as_text,
)

#: Width of a ServeGen window.
WINDOW_S = 600.0

DAY_S = 86_400.0

WINDOW_SCHEMA: dict[str, pl.DataType] = {
    "client_id": pl.Int64(),
    "window_start_s": pl.Float64(),
    "rate_rps": pl.Float64(),
    "iat_cv": pl.Float64(),
    "iat_dist": pl.String(),
    "dist_param1": pl.Float64(),
    "dist_param2": pl.Float64(),
}

#: A service's aggregate rate per window (:func:`load_servegen_rates`).
RATE_SCHEMA: dict[str, pl.DataType] = {
    "window_start_s": pl.Float64(),
    "rate_rps": pl.Float64(),
    "active_clients": pl.Int64(),
}

_FAMILIES = ("Gamma", "Weibull")


def load_servegen_windows(path: Path = SERVEGEN_SLICE_CSV_GZ) -> pl.DataFrame:
    """Load ServeGen rate windows (plain or gzipped CSV with the :data:`WINDOW_SCHEMA` columns).

    ``window_start_s`` counts from 00:00 of the first day. ``iat_dist`` is null for idle
    windows (rate 0); an active window must name ``Gamma`` or ``Weibull`` with a positive shape
    ``dist_param1`` (``dist_param2`` is the fitted scale). Line numbers in errors count lines of
    the decompressed CSV, the header being line 1.

    Returns
    -------
    pl.DataFrame
        Typed windows sorted by client and window start.
    """
    windows = _typed(path, WINDOW_SCHEMA)
    active = pl.col("rate_rps") > 0
    _check(
        path,
        windows,
        {
            ("rate_rps", "negative rate"): pl.col("rate_rps") < 0,
            ("iat_dist", f"an active window needs one of {_FAMILIES}"): active
            & ~pl.col("iat_dist").is_in(_FAMILIES).fill_null(False),
            ("dist_param1", "an active window needs a positive shape"): active
            & (pl.col("dist_param1") <= 0),
        },
    )
    return windows.sort("client_id", "window_start_s")


def load_servegen_rates(path: Path = SERVEGEN_RATES_CSV_GZ["m-large"]) -> pl.DataFrame:
    """Load a service's aggregate ServeGen rate, one row per window (plain or gzipped CSV with
    the :data:`RATE_SCHEMA` columns); by default the shipped 14 days of m-large, all clients
    (m-mid and m-small ship too, :data:`~simulator.paths.SERVEGEN_RATES_CSV_GZ`).

    Aggregate rates are what the fluid model reads (:func:`simulator.fluid_load.load_from_windows`):
    the sum over clients is exact, while the clients' inter-arrival fits do not add up, so an
    aggregate cannot feed :func:`servegen_requests`. Line numbers in errors count lines of the
    decompressed CSV, the header being line 1.

    Returns
    -------
    pl.DataFrame
        ``window_start_s``, ``rate_rps`` and ``active_clients``, sorted by window start.
    """
    rates = _typed(path, RATE_SCHEMA)
    _check(
        path,
        rates,
        {
            ("rate_rps", "negative rate"): pl.col("rate_rps") < 0,
            ("window_start_s", "repeated window"): pl.col("window_start_s").is_duplicated(),
        },
    )
    return rates.sort("window_start_s")


def fill_collection_gaps(rates: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Aggregate rates with each window that no client was active in carrying the previous
    window's rate; how many windows were filled.

    m-mid and m-small have such windows (84 and 37 of 2,016), in runs of 1 to 23, mostly in
    busy hours between windows of thousands of requests/s: a collection gap, not an idle
    service (ServeGen's data README calls them probably that). Replayed as zero load they
    would have a controller scale in and then meet the whole load at once.
    A gap at the very start has nothing to carry and stays at 0.
    """
    gap = pl.col("active_clients") == 0
    filled = rates.sort("window_start_s").with_columns(
        pl.when(gap)
        .then(None)
        .otherwise(pl.col("rate_rps"))
        .forward_fill()
        .fill_null(0.0)
        .alias("rate_rps")
    )
    return filled, int(rates.select(gap.sum()).item())


def _typed(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The CSV's ``schema`` columns parsed; a bad number names its line."""
    raw = read_csv_as_text(path, list(schema))
    columns = {}
    for column, dtype in schema.items():
        text = raw[column]
        if dtype == pl.String():
            columns[column] = text.str.strip_chars().replace("", None)
            continue
        parsed = text.str.strip_chars().cast(dtype, strict=False)
        bad = parsed.is_null() | parsed.is_nan() if dtype == pl.Float64() else parsed.is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise TraceError(
                f"{path}:{row + 2}: column '{column}': cannot parse {text[row]!r} as a number"
            )
        columns[column] = parsed
    return pl.DataFrame(columns)


def _check(path: Path, frame: pl.DataFrame, checks: dict[tuple[str, str], pl.Expr]) -> None:
    """Raise on the first row failing a check, naming its line, column and reason."""
    for (column, reason), bad in checks.items():
        rows = frame.with_row_index("row").filter(bad)
        if rows.height:
            row = int(rows["row"][0])
            raise TraceError(
                f"{path}:{row + 2}: column '{column}': {reason} (got {rows[column][0]!r})"
            )


def servegen_requests(
    windows: pl.DataFrame,
    lengths: pl.DataFrame,
    *,
    seed: int = 0,
    window_s: float = WINDOW_S,
) -> Trace:
    """Regenerate per-request arrivals from rate windows and give them real request lengths.

    For a window with rate ``r`` the request count is ``round(r * window_s)`` (ServeGen's rate is
    a count over the window, so this is exact). Gaps are drawn from the fitted family with shape
    ``dist_param1``, and the window's ``n + 1`` gaps are rescaled to span the window: the count,
    hence the mean rate, holds exactly, and the shape keeps the window's burstiness (the fitted
    scale cancels in the rescaling). Lengths come from rows of ``lengths`` (a canonical request
    frame, e.g. the Azure trace) drawn uniformly with replacement; prefix hashes are dropped,
    since sharing them across unrelated synthetic requests would invent prefix reuse.

    Parameters
    ----------
    windows : pl.DataFrame
        From :func:`load_servegen_windows`, filtered to the clients and windows wanted.
    lengths : pl.DataFrame
        Canonical request frame to sample ``input_tokens`` and ``output_tokens`` from.
    seed : int
        Seeds both the gaps and the length sampling.

    Returns
    -------
    Trace
        Starts at the first window: :data:`~simulator.traces.SYNTHETIC_EPOCH` (a midnight) plus
        that window's ``window_start_s``, so the hour of day is ServeGen's.
    """
    active = windows.filter(pl.col("rate_rps") > 0)
    if active.height == 0:
        raise ValueError("servegen_requests: no window with a positive rate")
    if lengths.height == 0:
        raise ValueError("servegen_requests: no requests to sample lengths from")
    rng = np.random.default_rng(seed)
    origin_s = float(windows["window_start_s"].min())
    arrivals = []
    for start_s, rate, family, shape in active.select(
        "window_start_s", "rate_rps", "iat_dist", "dist_param1"
    ).iter_rows():
        n = round(rate * window_s)
        if n == 0:
            continue
        gaps = rng.gamma(shape, size=n + 1) if family == "Gamma" else rng.weibull(shape, n + 1)
        offsets = np.cumsum(gaps)
        arrivals.append(start_s - origin_s + window_s * offsets[:-1] / offsets[-1])
    return _with_lengths(np.concatenate(arrivals), lengths, rng, origin_s)


def rate_requests(
    rates: pl.DataFrame,
    lengths: pl.DataFrame,
    *,
    first_s: float,
    span_s: float,
    rate_scale: float = 1.0,
    seed: int = 0,
    window_s: float = WINDOW_S,
) -> Trace:
    """Poisson arrivals at an aggregate rate (:func:`load_servegen_rates`) over a span.

    An aggregate sums many independent clients, and a superposition of many independent
    arrival streams tends to a Poisson process (Palm-Khintchine), so within each window the
    arrivals are Poisson at the window's rate times ``rate_scale``: the request-level twin of
    what :func:`simulator.fluid_load.load_from_windows` feeds fast mode. Lengths are drawn
    from ``lengths`` as in :func:`servegen_requests`.

    Parameters
    ----------
    rates : pl.DataFrame
        ``window_start_s`` and ``rate_rps`` per window (seconds from the first day's 00:00).
    lengths : pl.DataFrame
        Canonical request frame to sample ``input_tokens`` and ``output_tokens`` from.
    first_s, span_s : float
        The span, in seconds from the first day's 00:00.
    rate_scale : float
    seed : int

    Returns
    -------
    Trace
        Starts at :data:`~simulator.traces.SYNTHETIC_EPOCH` plus ``first_s``.
    """
    if span_s <= 0 or rate_scale <= 0 or lengths.height == 0:
        raise ValueError("rate_requests: need a positive span and scale, and lengths")
    rng = np.random.default_rng(seed)
    rate = dict(rates.select("window_start_s", "rate_rps").iter_rows())
    arrivals = []
    window = math.floor(first_s / window_s)
    while window * window_s < first_s + span_s:
        lo = max(window * window_s, first_s)
        hi = min((window + 1) * window_s, first_s + span_s)
        n = rng.poisson(rate.get(window * window_s, 0.0) * rate_scale * (hi - lo))
        arrivals.append(np.sort(rng.uniform(lo, hi, n)) - first_s)
        window += 1
    return _with_lengths(np.concatenate(arrivals), lengths, rng, first_s)


#: The embedded default day's scale (:func:`servegen_day`): 1/50 of m-large's rate, 3.0-11.7
#: requests/s on day 1. Its busiest minute loads the default cluster's prefill pool to ~96%
#: GPU utilisation with TTFT p99 still under the 6 s SLO, as the Azure hour's busiest minute
#: loads it to ~82%: a fixed deployment sized for its peak, the setting of the paper's Fig. 2.
DAY_RATE_SCALE = 0.02


def servegen_day(day: int = 1, *, rate_scale: float = DAY_RATE_SCALE, seed: int = 0) -> Trace:
    """One real day of ServeGen m-large (:func:`load_servegen_rates`, day 1-14) as requests:
    Poisson at its 10-minute rates times ``rate_scale`` (:func:`rate_requests`), with Azure
    2023 conversation lengths. The embedded default telemetry: a whole diurnal swing of load,
    which a signal study needs and the Azure hour does not have."""
    rates = load_servegen_rates()
    days = math.ceil(rates["window_start_s"].max() / DAY_S)
    if not 1 <= day <= days:
        raise ValueError(f"servegen_day: day must be 1..{days}, got {day}")
    return rate_requests(
        rates,
        default_trace().requests,
        first_s=(day - 1) * DAY_S,
        span_s=DAY_S,
        rate_scale=rate_scale,
        seed=seed,
    )


def _with_lengths(
    arrival_s: np.ndarray, lengths: pl.DataFrame, rng: np.random.Generator, origin_s: float
) -> Trace:
    """A trace of these arrivals, each with the lengths of a row of ``lengths`` drawn
    uniformly with replacement, starting ``origin_s`` after the synthetic epoch (a midnight)."""
    rows = rng.integers(0, lengths.height, arrival_s.size)
    return Trace(
        requests=canonical_frame(
            arrival_s,
            lengths["input_tokens"].to_numpy()[rows],
            lengths["output_tokens"].to_numpy()[rows],
        ),
        start=SYNTHETIC_EPOCH + timedelta(seconds=origin_s),
    )
