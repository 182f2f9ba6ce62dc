"""Offered load per control interval, the input of the fluid model (:mod:`simulator.fluid`).

The fluid model never sees a request: it sees, per interval, how many requests arrive and how
many prompt and decode tokens they bring, plus a few moments of the length mix (:class:`LengthMix`)
that shape batching and KV use. Three sources build it:

- :func:`load_from_requests` bins a canonical request frame (any trace), so the fluid and the
  request-level mode can be compared on exactly the same arrivals;
- :func:`load_from_service_load` reads the offered load a store recorded per interval
  (canonical ``service_load``): a user's own telemetry, with no request to bin;
- :func:`load_from_windows` reads rate windows (ServeGen's 10-minute rates) as a
  piecewise-constant rate curve and takes the expected arrivals per interval: no per-request
  sampling, which is what makes weeks of load on a thousand instances cheap. The shipped
  aggregate of ServeGen's m-large service covers 14 real days, so its diurnal and weekly shape
  are both ServeGen's; a shorter span (the one-day, three-client slice) repeats when asked for
  more days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from simulator.metrics import QUANTILES
from simulator.servegen import WINDOW_S
from simulator.traces import SYNTHETIC_EPOCH


@dataclass(frozen=True)
class LengthMix:
    """Moments of the request length mix that the fluid model needs.

    Attributes
    ----------
    prompt_tokens : float
        Mean prompt length: sizes prefill batches and converts prompt tokens to requests.
    decode_tokens : float
        Mean tokens a request generates after its first (the first comes from prefill).
    decode_context : float
        Mean KV tokens a resident request holds over its decode steps, weighted by steps:
        step ``j`` of a request with prompt ``p`` reads ``p + j`` tokens, so a request
        contributes ``(m - 1) (p + m / 2)`` over its ``m - 1`` steps. Prices a decode step.
    decode_footprint : float
        Mean KV reservation (``p + m``, the decode admission reserves the whole footprint)
        of a resident request, weighted by its residence (``m - 1`` steps). Bounds the batch
        by KV capacity and gives the KV usage gauge.
    prompt_quantiles : tuple of float
        Prompt lengths at :data:`simulator.metrics.QUANTILES`: a request's own prefill is
        priced at them for the TTFT quantiles.
    """

    prompt_tokens: float
    decode_tokens: float
    decode_context: float
    decode_footprint: float
    prompt_quantiles: tuple[float, ...]

    @classmethod
    def of(cls, requests: pl.DataFrame) -> LengthMix:
        """Moments of a canonical request frame's ``input_tokens`` and ``output_tokens``."""
        if requests.height == 0:
            raise ValueError("LengthMix.of: no requests")
        p = requests["input_tokens"].to_numpy().astype(float)
        m = requests["output_tokens"].to_numpy().astype(float)
        steps = m - 1
        total_steps = max(steps.sum(), 1.0)
        return cls(
            prompt_tokens=float(p.mean()),
            decode_tokens=float(steps.mean()),
            decode_context=float((steps * (p + m / 2)).sum() / total_steps),
            decode_footprint=float((steps * (p + m)).sum() / total_steps),
            prompt_quantiles=tuple(float(v) for v in np.quantile(p, QUANTILES)),
        )


@dataclass(frozen=True)
class FluidLoad:
    """Offered load on a grid of ``interval_s`` intervals from ``start``.

    Attributes
    ----------
    start : datetime
        Time-zone-aware start of interval 0.
    interval_s : float
        Control interval.
    requests, prompt_tokens, decode_tokens : np.ndarray
        Per interval: arriving requests, their prompt tokens, and their output tokens beyond
        the first (expected values when built from rates, so not necessarily integers).
    mix : LengthMix
        Length moments of the whole run.
    prompt_quantiles : np.ndarray or None
        Prompt lengths at :data:`simulator.metrics.QUANTILES` among each interval's arrivals,
        shape ``(len(QUANTILES), count)``, NaN without arrivals; None uses the mix's. Known
        when the load comes from requests: a TTFT quantile follows the interval's own prompts.
    """

    start: datetime
    interval_s: float
    requests: np.ndarray
    prompt_tokens: np.ndarray
    decode_tokens: np.ndarray
    mix: LengthMix
    prompt_quantiles: np.ndarray | None = None

    @property
    def count(self) -> int:
        """Number of intervals."""
        return self.requests.size

    @property
    def end(self) -> datetime:
        """End of the last interval."""
        return self.start + timedelta(seconds=self.count * self.interval_s)

    def part(self, first: int, stop: int) -> FluidLoad:
        """Intervals ``first`` .. ``stop - 1`` as a load of their own (same mix), starting at
        interval ``first``'s time: e.g. curation days and evaluation days of one span."""
        if not 0 <= first < stop <= self.count:
            raise ValueError(f"part [{first}, {stop}) outside the load's {self.count} intervals")
        quantiles = None if self.prompt_quantiles is None else self.prompt_quantiles[:, first:stop]
        return FluidLoad(
            start=self.start + timedelta(seconds=first * self.interval_s),
            interval_s=self.interval_s,
            requests=self.requests[first:stop],
            prompt_tokens=self.prompt_tokens[first:stop],
            decode_tokens=self.decode_tokens[first:stop],
            mix=self.mix,
            prompt_quantiles=quantiles,
        )


def load_from_requests(
    requests: pl.DataFrame, start: datetime, interval_s: float, count: int | None = None
) -> FluidLoad:
    """Bin a canonical request frame by arrival into ``count`` intervals (default: enough to
    hold the last arrival)."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    arrival = requests["arrival_s"].to_numpy()
    count = count or int(arrival.max() // interval_s) + 1
    index = np.minimum((arrival // interval_s).astype(np.int64), count - 1)

    def per_bin(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=count).astype(float)

    quantiles = np.full((len(QUANTILES), count), np.nan)
    by_bin = (
        pl.DataFrame({"bin": index, "prompt": requests["input_tokens"]})
        .group_by("bin")
        .agg(pl.col("prompt").quantile(q, interpolation="linear").alias(str(q)) for q in QUANTILES)
    )
    for row, q in enumerate(QUANTILES):
        quantiles[row, by_bin["bin"].to_numpy()] = by_bin[str(q)].to_numpy()

    return FluidLoad(
        start=start,
        interval_s=interval_s,
        requests=per_bin(None),
        prompt_tokens=per_bin(requests["input_tokens"].to_numpy().astype(float)),
        decode_tokens=per_bin(requests["output_tokens"].to_numpy().astype(float) - 1),
        mix=LengthMix.of(requests),
        prompt_quantiles=quantiles,
    )


def scaled_lengths(lengths: pl.DataFrame, prompt_mean: float, output_mean: float) -> pl.DataFrame:
    """``lengths`` (a canonical request frame) with its prompt and output lengths each scaled
    so that their means are ``prompt_mean`` and ``output_mean`` (rounded, at least 1 token):
    the reference's shape, spread and tail relative to the mean, at another service's means.
    """
    if prompt_mean <= 0 or output_mean <= 0:
        raise ValueError("scaled_lengths: means must be > 0")

    def scaled(column: str, mean: float) -> pl.Expr:
        factor = mean / lengths[column].mean()
        return (pl.col(column) * factor).round().cast(pl.Int64).clip(lower_bound=1)

    return lengths.with_columns(
        scaled("input_tokens", prompt_mean), scaled("output_tokens", output_mean)
    )


def load_from_service_load(service_load: pl.DataFrame, lengths: pl.DataFrame) -> FluidLoad:
    """The offered load a store recorded: canonical ``service_load`` rows of one service.

    Per interval, ``request_rate_rps``, ``input_tps`` and ``output_tps`` times ``interval_s``
    give the arrivals, their prompt tokens and their output tokens (one per request fewer as
    decode tokens: the first comes from prefill). The rows must share one ``interval_s``; the
    grid runs from the first row to the last. An interval without a row, or with a null
    measurement, carries the previous interval's load: a missed scrape is not an idle service.
    ``lengths`` (a canonical request frame) gives the length mix; the TTFT quantiles price the
    mix's prompts, since a rate does not say how an interval's prompts spread.
    """
    if service_load.is_empty():
        raise ValueError("load_from_service_load: no rows")
    intervals = service_load["interval_s"].unique()
    if intervals.len() > 1:
        raise ValueError(
            f"service_load mixes intervals of {sorted(intervals.to_list())} s: load one length"
        )
    interval_s = float(intervals[0])
    start = service_load["ts"].min()
    index = (
        ((service_load["ts"] - start).dt.total_microseconds() / (interval_s * 1e6))
        .round()
        .cast(pl.Int64)
    )
    count = int(index.max()) + 1
    grid = (
        pl.DataFrame({"index": range(count)})
        .join(service_load.with_columns(index=index), on="index", how="left")
        .sort("index")
        .select(pl.col("request_rate_rps", "input_tps", "output_tps").forward_fill().fill_null(0))
    )
    requests = grid["request_rate_rps"].to_numpy() * interval_s
    output = grid["output_tps"].to_numpy() * interval_s
    return FluidLoad(
        start=start,
        interval_s=interval_s,
        requests=requests,
        prompt_tokens=grid["input_tps"].to_numpy() * interval_s,
        decode_tokens=np.maximum(output - requests, 0.0),
        mix=LengthMix.of(lengths),
    )


def load_from_windows(
    windows: pl.DataFrame,
    lengths: pl.DataFrame,
    interval_s: float,
    *,
    days: int | None = None,
    rate_scale: float = 1.0,
    window_s: float = WINDOW_S,
) -> FluidLoad:
    """Expected load per interval of rate windows, over ``days``.

    Parameters
    ----------
    windows : pl.DataFrame
        ``window_start_s`` (seconds from 00:00 of the first day) and ``rate_rps`` per window:
        a service's aggregate rate (:func:`simulator.servegen.load_servegen_rates`, 14 days
        ship) or per-client windows (:func:`simulator.servegen.load_servegen_windows`); rates
        of rows sharing a window add up, and a missing window has rate 0.
    lengths : pl.DataFrame
        Canonical request frame whose length mix the requests follow (e.g. the Azure trace).
    interval_s : float
        Control interval; a day must hold a whole number of them.
    days : int, optional
        Days of load (default: the whole days the windows span). More days than the windows
        span repeat them from their first day, so a week-long span keeps its weekly shape.
    rate_scale : float
        Multiplies every rate, to size the load to a larger cluster.

    Returns
    -------
    FluidLoad
        Starts at :data:`~simulator.traces.SYNTHETIC_EPOCH` (a midnight), so that a window's
        ``window_start_s`` is its time since that midnight.
    """
    day_s = 86_400.0
    per_day = day_s / interval_s
    if interval_s <= 0 or per_day != int(per_day):
        raise ValueError("interval_s must divide a day")
    start_s = windows["window_start_s"].to_numpy()
    if start_s.size == 0 or start_s.min() < 0:
        raise ValueError("load_from_windows: need windows, none starting before day 1")
    span_days = math.ceil((start_s.max() + window_s) / day_s)
    days = span_days if days is None else days
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    rate = np.zeros(round(span_days * day_s / window_s))
    np.add.at(rate, (start_s // window_s).astype(np.int64), windows["rate_rps"].to_numpy())
    # Interval midpoints read the rate of the window they fall in (intervals shorter than a
    # window nest in it; longer ones sample it, which the caller chose by the interval).
    mid_s = (np.arange(int(per_day) * days) + 0.5) * interval_s % (span_days * day_s)
    arrivals = rate[(mid_s // window_s).astype(np.int64)] * rate_scale * interval_s
    mix = LengthMix.of(lengths)
    return FluidLoad(
        start=SYNTHETIC_EPOCH,
        interval_s=interval_s,
        requests=arrivals,
        prompt_tokens=arrivals * mix.prompt_tokens,
        decode_tokens=arrivals * mix.decode_tokens,
        mix=mix,
    )
