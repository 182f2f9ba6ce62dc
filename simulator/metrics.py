"""Per-interval telemetry from the simulator's event logs, in the canonical telemetry schema.

Every quantity comes from exact event accounting over the interval ``[ts, ts + interval_s)``:

- ``gpu_util_ratio``: share of the interval during which a forward pass (any kernel) ran, the
  semantics of DCGM_FI_DEV_GPU_UTIL. A pass counts whole, overhead included, because serving
  engines keep the GPU's stream fed through a pass.
- ``sm_active_ratio``: share of the interval with warps resident on the SMs, the semantics of
  DCGM_FI_PROF_SM_ACTIVE. A pass contributes its time in SM-wide roofline kernels (each kernel
  group's ``max(compute_s, memory_s)``: a GEMM stalled on memory still holds its warps), not its
  all-reduce or fixed overhead (:class:`simulator.perf_model.StepCost`). So a decode step that
  runs back to back is fully "utilised" yet only partly SM-active.
- ``prefill_tps_total`` / ``prefill_tps_cache_missed``: prompt tokens of batches finished in the
  interval, all of them / only those computed (prefix-cache misses), per second.
- ``decode_tps``: output tokens beyond each request's first emitted by passes finished in the
  interval, per second (decode steps; colocated passes' decode share).
- ``ttft_p*_s``: first-token latencies stamped in the interval, on the prefill instance that
  produced the token; ``tbt_p*_s``: durations of passes that emitted decode tokens, finished in
  the interval, weighted by those tokens. Quantiles are inverted-CDF (the smallest sample whose
  cumulative weight reaches q); null when the interval has no sample.
- ``queue_depth``, ``running_requests``, ``kv_usage_ratio``: time averages over the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from simulator.recorder import Recorder
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD, conform

QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class InstanceInfo:
    """Identity of a simulated instance as telemetry labels it."""

    instance_id: str
    role: str
    gpu_type: str
    gpus: int


@dataclass(frozen=True)
class Presence:
    """Per instance (rows) and interval (columns): whether the instance existed at some time
    in the interval, and whether it was ready (serving) throughout it."""

    exists: np.ndarray  # bool, (instances, intervals)
    ready: np.ndarray  # bool, (instances, intervals)


@dataclass(frozen=True)
class Bins:
    """The interval grid: ``count`` intervals of ``interval_s``, the first being interval
    ``first`` from the trace start (``first > 0``: a window of a longer run, as a closed loop
    computes it; times stay absolute, so a window reads exactly as the whole grid does)."""

    start: datetime
    interval_s: float
    count: int
    first: int = 0

    @property
    def start_s(self) -> float:
        """Seconds from the trace start to the grid's first interval."""
        return self.first * self.interval_s

    @property
    def end_s(self) -> float:
        """Seconds from the trace start to the end of the grid's last interval."""
        return (self.first + self.count) * self.interval_s

    @classmethod
    def covering(cls, start: datetime, interval_s: float, end_s: float) -> Bins:
        """The fewest intervals that contain every instant in ``[0, end_s]``."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        return cls(start, interval_s, int(end_s // interval_s) + 1)

    def of(self, at_s: np.ndarray) -> np.ndarray:
        """Interval index of each instant within the grid (clipped to its ends)."""
        index = (at_s // self.interval_s).astype(np.int64) - self.first
        return np.clip(index, 0, self.count - 1)

    def key_frame(self) -> pl.DataFrame:
        """One row per interval: ``bin`` and ``ts``, the interval's start (UTC, microseconds)."""
        index = np.arange(self.count, dtype=np.int64)
        offset_us = np.round((index + self.first) * self.interval_s * 1e6).astype(np.int64)
        return pl.DataFrame({"bin": index}).with_columns(
            ts=pl.lit(self.start).dt.cast_time_unit("us").dt.convert_time_zone("UTC")
            + pl.Series(offset_us).cast(pl.Duration("us"))
        )


def instance_samples(
    recorder: Recorder,
    instances: list[InstanceInfo],
    bins: Bins,
    service: str,
    *,
    mid_run: bool = False,
    pending: Sequence[tuple] = (),
    presence: Presence | None = None,
) -> pl.DataFrame:
    """The ``instance_samples`` table: one row per instance per interval, conformed.

    Parameters
    ----------
    recorder, instances, bins, service
        The run's logs, its instances by global index, the interval grid, the service label.
    mid_run : bool
        The grid ends before the run does (closed loop): events at or after its end (or before
        its start, for a window) are left out rather than folded into its last (first)
        interval, so that each interval reads as it will at the end of the run.
    pending : sequence of tuple
        Steps of decode strides still running (:meth:`Recorder.passes`), for a mid-run grid.
    presence : Presence or None
        Which instances exist and are ready in which intervals; None: all, all the time.
    """
    n_inst = len(instances)
    rec = recorder
    passes = rec.passes(pending)
    pass_inst = passes.instance
    pass_start = passes.start_s
    pass_dur = passes.duration_s
    pass_batch = passes.batch_size.astype(float)
    pass_decode = passes.decode_tokens.astype(float)
    pass_end = pass_start + pass_dur
    sm_active_fraction = passes.sm_active_fraction
    grid_start, grid_end = bins.start_s, bins.end_s

    def in_grid(at_s: np.ndarray) -> np.ndarray:
        return (at_s >= grid_start) & (at_s < grid_end)

    def per_bin_sum(inst, at_s, weight, flat=None):
        at_s = np.asarray(at_s, dtype=float)
        if mid_run:
            weight = np.where(in_grid(at_s), weight, 0.0)
        if flat is None:
            flat = inst * bins.count + bins.of(at_s)
        return np.bincount(flat, weights=weight, minlength=n_inst * bins.count)

    pass_end_key = pass_inst * bins.count + bins.of(pass_end)  # (instance, interval) of ends

    decode_pass = pass_decode > 0
    ttft_at = np.asarray(rec.ttft_at_s, dtype=float)
    ttft_kept = np.ones(ttft_at.size, dtype=bool)
    if mid_run:
        decode_pass &= in_grid(pass_end)
        ttft_kept = in_grid(ttft_at)
    interval = bins.interval_s
    busy, sm_active, running = _integrate(
        pass_inst,
        pass_start,
        pass_dur,
        (np.ones_like(pass_dur), sm_active_fraction, pass_batch),
        n_inst,
        bins,
    )
    columns = {
        "gpu_util_ratio": busy,
        "sm_active_ratio": sm_active,
        "running_requests": running,
        "queue_depth": _gauge_integral(
            rec.queue_instance, rec.queue_at_s, rec.queue_depth, n_inst, bins
        ),
        "kv_usage_ratio": _gauge_integral(
            rec.kv_instance, rec.kv_at_s, rec.kv_usage_ratio, n_inst, bins
        ),
        "prefill_tps_total": per_bin_sum(
            np.asarray(rec.prefill_instance, dtype=np.int64),
            rec.prefill_end_s,
            np.asarray(rec.prefill_total_tokens, dtype=float),
        ),
        "prefill_tps_cache_missed": per_bin_sum(
            np.asarray(rec.prefill_instance, dtype=np.int64),
            rec.prefill_end_s,
            np.asarray(rec.prefill_missed_tokens, dtype=float),
        ),
        "decode_tps": per_bin_sum(pass_inst, pass_end, pass_decode, pass_end_key),
    }
    size = n_inst * bins.count
    ttft_inst = np.asarray(rec.ttft_instance, dtype=np.int64)[ttft_kept]
    ttft = _weighted_quantiles(
        ttft_inst * bins.count + bins.of(ttft_at[ttft_kept]),
        np.asarray(rec.ttft_s, dtype=float)[ttft_kept],
        np.ones(ttft_inst.size),
        size,
        "ttft",
    )
    tbt = _weighted_quantiles(
        pass_end_key[decode_pass],
        pass_dur[decode_pass],
        pass_decode[decode_pass],
        size,
        "tbt",
    )
    frame = pl.DataFrame(
        {
            "instance": np.repeat(np.arange(n_inst, dtype=np.int64), bins.count),
            "bin": np.tile(np.arange(bins.count, dtype=np.int64), n_inst),
            **{name: values / interval for name, values in columns.items()},
            **ttft,
            **tbt,
        }
    ).with_columns(pl.col("gpu_util_ratio", "sm_active_ratio", "kv_usage_ratio").clip(0.0, 1.0))
    labels = pl.DataFrame(
        {
            "instance": np.arange(n_inst, dtype=np.int64),
            "instance_id": [i.instance_id for i in instances],
            "role": [i.role for i in instances],
            "gpu_type": [i.gpu_type for i in instances],
            "gpus_per_instance": [i.gpus for i in instances],
        }
    )
    out = (
        frame.join(labels, on="instance", how="left")
        .join(bins.key_frame(), on="bin", how="left")
        .with_columns(interval_s=pl.lit(interval), service=pl.lit(service))
        .sort("ts", "instance")
    )
    if presence is None:
        out = out.with_columns(ready=pl.lit(True))
    else:
        flat = out["instance"].to_numpy() * bins.count + out["bin"].to_numpy()
        out = out.with_columns(ready=presence.ready.ravel()[flat]).filter(
            pl.Series(presence.exists.ravel()[flat])
        )
    return conform(out, INSTANCE_SAMPLES)


def service_load(
    arrival_s: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    bins: Bins,
    service: str,
) -> pl.DataFrame:
    """The ``service_load`` table: offered load per interval, by arrival time, conformed."""
    index = bins.of(np.asarray(arrival_s, dtype=float))
    interval = bins.interval_s

    def rate(weights):
        return np.bincount(index, weights=weights, minlength=bins.count) / interval

    frame = pl.DataFrame(
        {
            "bin": np.arange(bins.count, dtype=np.int64),
            "request_rate_rps": rate(None),
            "input_tps": rate(np.asarray(input_tokens, dtype=float)),
            "output_tps": rate(np.asarray(output_tokens, dtype=float)),
        }
    )
    out = (
        frame.join(bins.key_frame(), on="bin", how="left")
        .with_columns(interval_s=pl.lit(interval), service=pl.lit(service))
        .sort("ts")
    )
    return conform(out, SERVICE_LOAD)


def _integrate(
    inst: np.ndarray,
    start: np.ndarray,
    duration: np.ndarray,
    rates: tuple[np.ndarray, ...],
    n_inst: int,
    bins: Bins,
) -> list[np.ndarray]:
    """Integrals over each interval of piecewise-constant signals, flattened (instance, bin).

    Segment ``k`` contributes ``rate[k]`` per second over ``[start[k], start[k] + duration[k])``
    to instance ``inst[k]``, for each ``rate`` in ``rates`` (signals sharing their segments
    split them once); segments spanning several intervals are split at the boundaries.
    """
    out_size = n_inst * bins.count
    if inst.size == 0:
        return [np.zeros(out_size) for _ in rates]
    interval = bins.interval_s
    end = start + duration
    first = bins.of(start)
    last = bins.of(end)
    spans = last - first + 1
    seg = np.repeat(np.arange(inst.size), spans)
    offset = np.arange(seg.size) - np.repeat(np.cumsum(spans) - spans, spans)
    b = first[seg] + offset
    lo = np.maximum(start[seg], (b + bins.first) * interval)
    hi = np.minimum(end[seg], (b + bins.first + 1) * interval)
    overlap = np.maximum(hi - lo, 0.0)
    flat = inst[seg] * bins.count + b
    return [np.bincount(flat, weights=rate[seg] * overlap, minlength=out_size) for rate in rates]


def _gauge_integral(
    inst: list[int], at_s: list[float], value: list[float], n_inst: int, bins: Bins
) -> np.ndarray:
    """Integral per interval of gauges logged as (instance, time, new value) changes.

    A gauge is 0 before its first change and holds each value until the next change of the
    same instance, or the end of the grid.
    """
    inst_a = np.asarray(inst, dtype=np.int64)
    at = np.asarray(at_s, dtype=float)
    val = np.asarray(value, dtype=float)
    order = np.lexsort((at, inst_a))  # stable: same-instant changes keep their log order
    inst_a, at, val = inst_a[order], at[order], val[order]
    grid_end = bins.end_s
    following = np.append(at[1:], grid_end)
    same_instance_next = np.append(inst_a[1:] == inst_a[:-1], False)
    until = np.where(same_instance_next, following, grid_end)
    return _integrate(inst_a, at, until - at, (val,), n_inst, bins)[0]


def _weighted_quantiles(
    key: np.ndarray, value: np.ndarray, weight: np.ndarray, size: int, name: str
) -> dict[str, pl.Series]:
    """Inverted-CDF weighted quantiles of ``value`` per key in ``range(size)`` (flattened
    instance and interval), as ``{name}_pXX_s`` columns indexed by key, null where a key has no
    sample.

    The weights are counts (whole numbers), so running sums are exact: a group's cumulative
    weight is the global running sum less the sum before the group.
    """
    # Sorted by key, then value: a sort by value, then a stable one by key (a radix sort when
    # keys fit 16 bits), is ``np.lexsort``'s order at half its cost. The stable value sort is
    # the faster one here: decode steps arrive in runs of non-decreasing durations.
    order = np.argsort(value, kind="stable")
    small_key = key[order].astype(np.uint16 if size <= 1 << 16 else np.int64)
    order = order[np.argsort(small_key, kind="stable")]
    key, value = key[order], value[order]
    cumulative = np.cumsum(weight[order])
    starts = np.flatnonzero(np.diff(key, prepend=-1))
    before = np.concatenate(((0.0,), cumulative))[starts]
    group = np.repeat(np.arange(starts.size), np.diff(starts, append=key.size))
    within = cumulative - before[group]
    total = within[np.append(starts[1:], key.size) - 1]
    columns = {}
    for q in QUANTILES:
        column = np.full(size, np.nan)
        if starts.size:
            # Within a group the test fails, then holds from the quantile on (the last sample
            # always reaches q of the total): the quantile follows the failures.
            below = np.add.reduceat(within < q * total[group], starts, dtype=np.int64)
            column[key[starts]] = value[starts + below]
        columns[f"{name}_p{round(q * 100)}_s"] = pl.Series(column, nan_to_null=True)
    return columns
