"""Fast mode: an aggregate (fluid) model of a P/D cluster, one step per control interval.

The request-level engine (:func:`simulator.simulate`) follows every request; weeks of load on
a thousand instances would take hours. This model keeps only what the control loop sees: per
interval and pool, the tokens offered, the tokens served, the backlog carried to the next
interval, and the telemetry those imply. Every quantity is a numpy array over intervals (and
pools); nothing iterates over requests or instances, so its cost grows with intervals only.

Mechanisms, each the expectation of the request-level one (docs/simulator.md, "Fast mode"):

- **Routing.** Join-shortest-queue drains work where it goes fastest, so in the fluid limit a
  role's load splits over its pools in proportion to their capacity and evenly over a pool's
  identical instances: one instance's values stand for all of its pool.
- **Capacity and backlog.** A prefill instance serves at most ``k_max`` mean prompts (those
  fitting the token budget) per batch of duration ``T(k_max)``; a decode instance at most
  ``B_max / t(B_max)`` tokens/s, ``B_max`` the batch KV capacity and ``max_num_seqs`` allow.
  Backlog follows Lindley's recursion ``q_t = max(0, q_{t-1} + a_t - c_t)``, solved for all
  intervals at once from cumulative sums. Prompts served release their decode tokens to the
  decode pools in the same interval (transfer and queueing inside an interval are not split).
- **Prefill batching.** Join-shortest-queue sends a prompt to an idle instance while one
  exists, so it waits, and shares a batch, only when all ``n`` are busy: with probability
  ``C``, Erlang C at the erlangs the prompts offer alone (``n * lam * T(1)``; exponential
  service, an upper bound on the near-deterministic batches). A batch that starts from a queue
  holds what arrived during the previous one: under Poisson arrivals at ``lam`` per instance, a
  batch of duration ``T`` finds ``x = lam * T`` prompts and is followed by idling with
  probability ``exp(-x)``, a mean of ``x + exp(-x)``. So ``k = 1 + C (x + exp(-x) - 1)`` with
  ``T = T(k)`` (solved by bisection), and the busy fraction is ``lam * T(k) / k``: about
  ``lam * T(1)`` at light load, 1 at saturation. Prefill utilisation follows load.
- **Decode batching.** Requests stay resident for their whole output (``m - 1`` steps of
  ``t(B)``), so by Little's law ``N = r * t(B)`` are resident on average at a decode-token rate
  ``r``. With Poisson arrivals and independent residences (M/G/inf) the count is Poisson(N):
  the instance steps whenever one is resident, a busy fraction ``1 - exp(-N)``, and its batch
  while busy is ``B = N / (1 - exp(-N))`` (fixed point with ``t = t(B)``). A few seconds of
  output per request keep ``N`` well above 1 at light load: decode utilisation stays high.
- **Latency.** TBT is the step time at the batch a token sees; tokens come in proportion to
  batch size, so that batch is size-biased, ``1 + Poisson(N)`` for Poisson counts, capped at
  ``B_max`` (and ``B_max`` while a backlog waits). TTFT at quantile ``q`` is the own batch
  ``T(k)`` with the request's prompt at ``q`` (the interval's prompts when known) in place of
  a mean one, plus, with probability ``C``, a wait for the first of ``n`` busy instances to
  free (mean ``T / (n + 1)``, taken uniform), plus the backlog ahead at the pool's capacity.
- **When tokens count.** Work is queued by arrival interval, but telemetry counts a prefill
  batch's tokens when it ends and a decode request's tokens over its residence; a fixed
  causal kernel moves served work to the intervals it is emitted in (:func:`_spread`).

No prefix caching (cache-missed equals total prompt tokens), no KV-transfer time, no
preemption, no startup: these are request-level mechanisms the fluid model averages away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator.calibration import default_efficiency
from simulator.cluster import DECODE, PREFILL, ClusterSpec, PoolSpec
from simulator.fluid_load import FluidLoad, LengthMix
from simulator.hardware import GPUS, MODELS
from simulator.metrics import QUANTILES, Bins
from simulator.perf_model import PerfModel
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD, conform

#: Bisection halvings of the batch-size interval: 2**-50 of it, far below any telemetry digit.
BISECTIONS = 50


@dataclass(frozen=True)
class PoolTelemetry:
    """Per-interval telemetry of one pool, as the values of each of its identical instances.

    Attributes
    ----------
    pool : PoolSpec
        The pool (its ``count`` is the spec's; ``count`` below is what ran).
    count : np.ndarray
        Instances per interval (int).
    metrics : dict of str to np.ndarray
        Per-instance canonical metric columns (:data:`telemetry.schema.INSTANCE_METRIC_COLUMNS`)
        per interval; NaN where a latency has no sample.
    """

    pool: PoolSpec
    count: np.ndarray
    metrics: dict[str, np.ndarray]


@dataclass(frozen=True)
class FluidResult:
    """Telemetry of a fluid run; frames are built on demand so a long run stays arrays."""

    load: FluidLoad
    pools: tuple[PoolTelemetry, ...]

    def _bins(self) -> pl.DataFrame:
        return Bins(self.load.start, self.load.interval_s, self.load.count).key_frame()

    def pool_samples(self, service: str) -> pl.DataFrame:
        """Canonical ``instance_samples`` with one row per pool per interval: one instance
        standing for its identical peers, ``instance_id`` ``{role}-{gpu_type}-pool{j}``.

        A week on a thousand instances is ~10^8 instance rows; a pool's rows would all be
        equal, so this is the compact form for long runs.
        """
        frames = [self._pool_frame(j, service, f"pool{j}") for j in range(len(self.pools))]
        return conform(pl.concat(frames).sort("ts", "instance_id"), INSTANCE_SAMPLES)

    def instance_samples(self, service: str) -> pl.DataFrame:
        """Canonical ``instance_samples``, one row per instance per interval.

        Instance ids are ``{role}-{gpu_type}-{k}``, ``k`` counting per role over pools in
        order, as the request-level engine names them; an instance exists in an interval
        while ``k`` is below its pool's count there.
        """
        frames = []
        offset = {PREFILL: 0, DECODE: 0}
        for j, pool in enumerate(self.pools):
            role = pool.pool.role
            size = int(pool.count.max(initial=0))
            ks = pl.DataFrame({"k": np.arange(size, dtype=np.int64)})
            frame = (
                self._pool_frame(j, service, "")
                .join(ks, how="cross")
                .filter(pl.col("k") < pl.col("count"))
                .with_columns(
                    instance_id=pl.col("instance_id") + (pl.col("k") + offset[role]).cast(pl.String)
                )
            )
            offset[role] += size
            frames.append(frame)
        return conform(pl.concat(frames).sort("ts", "instance_id"), INSTANCE_SAMPLES)

    def service_load(self, service: str) -> pl.DataFrame:
        """Canonical ``service_load``: the offered load per interval."""
        load = self.load
        frame = self._bins().with_columns(
            interval_s=pl.lit(load.interval_s),
            service=pl.lit(service),
            request_rate_rps=load.requests / load.interval_s,
            input_tps=load.prompt_tokens / load.interval_s,
            output_tps=(load.decode_tokens + load.requests) / load.interval_s,
        )
        return conform(frame, SERVICE_LOAD)

    def _pool_frame(self, j: int, service: str, suffix: str) -> pl.DataFrame:
        pool = self.pools[j]
        spec = pool.pool
        return (
            self._bins()
            .with_columns(
                count=pool.count,
                interval_s=pl.lit(self.load.interval_s),
                service=pl.lit(service),
                role=pl.lit(spec.role),
                instance_id=pl.lit(f"{spec.role}-{spec.gpu_type}-{suffix}"),
                gpu_type=pl.lit(spec.gpu_type),
                gpus_per_instance=pl.lit(spec.tp),
                ready=pl.lit(True),
                **{name: pl.Series(values).fill_nan(None) for name, values in pool.metrics.items()},
            )
            .filter(pl.col("count") > 0)
        )


def simulate_fluid(
    load: FluidLoad, cluster: ClusterSpec, counts: Sequence[np.ndarray] | None = None
) -> FluidResult:
    """Run the fluid model of ``cluster`` under ``load``.

    Parameters
    ----------
    load : FluidLoad
        Offered load per interval (:mod:`simulator.fluid_load`).
    cluster : ClusterSpec
        P/D cluster; its pool counts hold in every interval unless ``counts`` is given.
    counts : sequence of np.ndarray, optional
        Instances per interval of each pool, prefill pools then decode pools: what a
        closed-loop backtest scales between intervals.

    Returns
    -------
    FluidResult
    """
    specs = (*cluster.prefill_pools, *cluster.decode_pools)
    if counts is None:
        counts = [np.full(load.count, p.count) for p in specs]
    if len(counts) != len(specs) or any(len(c) != load.count for c in counts):
        raise ValueError("counts needs one array per pool, one value per interval")
    model = MODELS[cluster.model]
    efficiency = cluster.efficiency or default_efficiency()
    perfs = [PerfModel(model, GPUS[p.gpu_type], p.tp, efficiency) for p in specs]
    n_prefill = len(cluster.prefill_pools)
    counts = [np.asarray(c, dtype=np.int64) for c in counts]
    mix = load.mix
    prefill = [_PrefillPool(perf, cluster, load) for perf in perfs[:n_prefill]]
    decode = [_DecodePool(perf, cluster, mix) for perf in perfs[n_prefill:]]
    served_prompt, prefill_metrics, prefill_s = _run_role(
        prefill, counts[:n_prefill], load.prompt_tokens, load.interval_s, 0.0
    )
    ratio = np.divide(
        load.decode_tokens,
        load.prompt_tokens,
        out=np.full(load.count, mix.decode_tokens / mix.prompt_tokens),
        where=load.prompt_tokens > 0,
    )
    _, decode_metrics, _ = _run_role(
        decode, counts[n_prefill:], served_prompt * ratio, load.interval_s, prefill_s
    )
    return FluidResult(
        load,
        tuple(
            PoolTelemetry(spec, count, metrics)
            for spec, count, metrics in zip(
                specs, counts, prefill_metrics + decode_metrics, strict=True
            )
        ),
    )


def _lindley(offered: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Served work and end-of-interval backlog of a queue offered ``offered`` per interval
    with ``capacity`` per interval: ``q_t = max(0, q_{t-1} + a_t - c_t)``, whose solution is
    ``S_t - min(0, min_{s<=t} S_s)`` with ``S`` the cumulative sum of ``a - c``."""
    s = np.cumsum(offered - capacity)
    backlog = np.maximum(s - np.minimum(np.minimum.accumulate(s), 0.0), 0.0)
    before = np.concatenate(([0.0], backlog[:-1]))
    return np.maximum(before + offered - backlog, 0.0), backlog


def _spread(work: np.ndarray, interval_s: float, delay_s: float, span_s: float) -> np.ndarray:
    """Work served for arrivals of each interval, moved to the intervals it is emitted in.

    An arrival falls uniformly in its interval and its work is emitted uniformly over
    ``[delay_s, delay_s + span_s)`` after it (a prefill batch's tokens at its end, a decode
    request's tokens over its residence), so a fixed causal kernel, the distribution of
    that sum over intervals, spreads it (midpoint rule on a 64 x 64 grid).
    """
    u = (np.arange(64) + 0.5) / 64
    offsets = (u[:, None] * interval_s + delay_s + u[None, :] * span_s).ravel()
    kernel = np.bincount((offsets // interval_s).astype(np.int64)) / offsets.size
    return np.convolve(work, kernel)[: work.size]


def _run_role(pools, counts, offered, interval_s, delay_s):
    """Split a role's offered tokens over its pools by capacity and queue each.

    Returns the role's served tokens per arrival interval, each pool's metrics, and the
    served-weighted mean time its work takes (prefill's delays decode's tokens).
    """
    capacity = np.array(
        [n * p.capacity_tps * interval_s for p, n in zip(pools, counts, strict=True)]
    )
    total = capacity.sum(axis=0)
    share = np.divide(capacity, total, out=np.zeros_like(capacity), where=total > 0)
    served_all = np.zeros(offered.size)
    metrics = []
    weighted_s = 0.0
    for pool, n, cap, sh in zip(pools, counts, capacity, share, strict=True):
        served, backlog = _lindley(offered * sh, cap)
        served_all += served
        # The emission kernel needs one time scale: the run's served-weighted mean.
        mean_s = float((pool.work_s(_per_instance(served, n) / interval_s, n) * served).sum())
        mean_s /= max(served.sum(), 1e-12)
        weighted_s += mean_s * served.sum()
        delay, span = (0.0, mean_s) if pool.emits_over_work else (mean_s, 0.0)
        emitted = _spread(served, interval_s, delay_s + delay, span)
        metrics.append(pool.metrics(_per_instance(emitted, n) / interval_s, backlog, n))
    return served_all, metrics, weighted_s / max(served_all.sum(), 1e-12)


def _fixed_point(g, upper: float | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Batch sizes ``b`` in ``[1, upper]`` with ``g(b) = b``, elementwise, by bisection.

    ``g(1) >= 1`` always (a batch holds at least its own request); where ``g(upper) >= upper``
    the pool is at its batch limit and ``upper`` is the answer. Bisection, not iteration,
    because near capacity the map's slope tends to 1 and iterating it stalls.
    """
    lo = np.ones(shape)
    hi = np.broadcast_to(np.asarray(upper, dtype=float), shape).copy()
    saturated = g(hi) >= hi
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        above = g(mid) >= mid
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.where(saturated, hi, lo)


def _per_instance(total: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``total / n``, 0 where a pool has no instance."""
    return np.divide(total, n, out=np.zeros_like(total), where=n > 0)


def _mean_backlog(backlog: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-instance backlog averaged over the interval (mean of its two ends)."""
    return _per_instance((backlog + np.concatenate(([0.0], backlog[:-1]))) / 2, n)


def _erlang_c(n: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """Probability that an arrival finds all ``n`` servers busy under ``offered`` erlangs
    (Erlang C, from the Erlang B recursion); 1 at or above ``n``."""
    blocked = np.ones_like(offered)
    for k in range(1, int(n.max(initial=0)) + 1):
        step = offered * blocked / (k + offered * blocked)
        blocked = np.where(k <= n, step, blocked)
    waiting = np.divide(
        n * blocked,
        n - offered * (1 - blocked),
        out=np.ones_like(offered),
        where=offered < n,
    )
    return np.clip(waiting, 0.0, 1.0)


def _latencies(prefix: str, values: list[np.ndarray], sampled: np.ndarray) -> dict:
    """Quantile columns ``{prefix}_p50_s``... from one array per quantile, NaN (null) where
    the interval has no sample."""
    return {
        f"{prefix}_p{round(q * 100)}_s": np.where(sampled, v, np.nan)
        for q, v in zip(QUANTILES, values, strict=True)
    }


class _PrefillPool:
    """Prefill instances of one (GPU, TP). Batch time is tabulated over whole batch sizes at
    the mean prompt and interpolated (attention's quadratic term, which the mean misses, is
    about 1% of a 70B prefill at ~1k tokens)."""

    emits_over_work = False  # a batch's tokens count when it ends

    def __init__(self, perf: PerfModel, cluster: ClusterSpec, load: FluidLoad) -> None:
        mix = load.mix
        self.prompt = mix.prompt_tokens
        self.k_max = max(1.0, cluster.prefill_token_budget / self.prompt)
        self.kv_capacity = perf.kv_capacity_tokens(cluster.kv_memory_fraction)
        self.ks = np.arange(1, math.ceil(self.k_max) + 1, dtype=float)
        costs = [perf.prefill([self.prompt] * int(k), [0.0] * int(k)) for k in self.ks]
        self.batch_s = np.array([c.duration_s for c in costs])
        self.sm_fraction = np.array([c.sm_active_fraction for c in costs])
        self.capacity_tps = self.k_max * self.prompt / float(self._duration(self.k_max))
        # A request's own prompt at each quantile (the interval's, else the run's), less the
        # mean prompt it replaces in a batch; the roofline prices prompt arrays elementwise.
        prompts = np.array(mix.prompt_quantiles)[:, None] * np.ones(load.count)
        if load.prompt_quantiles is not None:
            prompts = np.where(np.isnan(load.prompt_quantiles), prompts, load.prompt_quantiles)
        self.own_extra_s = perf.prefill([prompts], [0.0]).duration_s - costs[0].duration_s

    def _duration(self, k: np.ndarray | float) -> np.ndarray:
        return np.interp(k, self.ks, self.batch_s)

    def _solve(self, tps: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean batch size and the probability an arrival finds every instance busy.

        Join-shortest-queue sends an arrival to an idle instance while one exists, so it
        waits, and batches with others, only when all ``n`` are busy: Erlang C at the
        erlangs the pool's prompts offer alone. When they are, a batch takes what queued
        during the previous one (``x + exp(-x)`` with ``x = lam * T``, see the module notes).
        """
        lam = tps / self.prompt
        all_busy = _erlang_c(n, n * lam * self.batch_s[0])

        def batch(k: np.ndarray) -> np.ndarray:
            x = lam * self._duration(k)
            return 1 + all_busy * (x + np.exp(-x) - 1)

        return _fixed_point(batch, self.k_max, lam.shape), all_busy

    def work_s(self, tps: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Batch duration per interval."""
        return self._duration(self._solve(tps, n)[0])

    def metrics(self, tps: np.ndarray, backlog: np.ndarray, n: np.ndarray) -> dict:
        """Per-instance telemetry from the prompt tokens emitted and the backlog left."""
        k, all_busy = self._solve(tps, n)
        lam = tps / self.prompt
        batch_s = self._duration(k)
        util = np.minimum(lam * batch_s / k, 1.0)
        mean_backlog = _mean_backlog(backlog, n)
        backlog_s = mean_backlog / self.capacity_tps
        # An arrival that finds all busy joins the instance that frees first: the least of
        # n residuals, mean T / (n + 1), taken uniform on [0, 2 T / (n + 1)].
        max_wait_s = 2 * batch_s / (np.maximum(n, 1) + 1)
        ttft = []
        for q, extra_s in zip(QUANTILES, self.own_extra_s, strict=True):
            waited = np.clip((q - (1 - all_busy)) / np.maximum(all_busy, 1e-12), 0.0, 1.0)
            ttft.append(batch_s + extra_s + waited * max_wait_s + backlog_s)
        zeros = np.zeros_like(tps)
        return {
            "gpu_util_ratio": util,
            "sm_active_ratio": util * np.interp(k, self.ks, self.sm_fraction),
            "prefill_tps_cache_missed": tps,
            "prefill_tps_total": tps,
            "decode_tps": zeros,
            **_latencies("ttft", ttft, tps > 0),
            **_latencies("tbt", [zeros] * len(QUANTILES), zeros > 0),
            # Little's law on the mean wait before a batch, plus the backlog.
            "queue_depth": lam * all_busy * max_wait_s / 2 + mean_backlog / self.prompt,
            "running_requests": util * k,
            "kv_usage_ratio": np.minimum(util * k * self.prompt / self.kv_capacity, 1.0),
        }


class _DecodePool:
    """Decode instances of one (GPU, TP): step time at batch ``B`` over ``B`` resident
    requests of the mix's mean context, straight from the roofline model (elementwise)."""

    emits_over_work = True  # a request's tokens come over its residence

    def __init__(self, perf: PerfModel, cluster: ClusterSpec, mix: LengthMix) -> None:
        self.perf = perf
        self.mix = mix
        self.kv_capacity = perf.kv_capacity_tokens(cluster.kv_memory_fraction)
        self.b_max = float(
            max(1, min(cluster.decode_max_num_seqs, self.kv_capacity // mix.decode_footprint))
        )
        self.capacity_tps = self.b_max / float(self._step(np.array([self.b_max])).duration_s[0])

    def _step(self, batch: np.ndarray):
        return self.perf.cost(self.perf.decode_work(batch, batch * self.mix.decode_context))

    def _solve(self, tps: np.ndarray) -> np.ndarray:
        """Mean batch while stepping: ``B = N / (1 - exp(-N))``, ``N = tps * t(B)``."""

        def batch(b: np.ndarray) -> np.ndarray:
            resident = tps * self._step(b).duration_s
            busy = -np.expm1(-resident)
            return np.divide(resident, busy, out=np.ones_like(busy), where=busy > 0)

        return _fixed_point(batch, self.b_max, tps.shape)

    def work_s(self, tps: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Residence of a mean request: its decode tokens at the step time."""
        return self.mix.decode_tokens * self._step(self._solve(tps)).duration_s

    def metrics(self, tps: np.ndarray, backlog: np.ndarray, n: np.ndarray) -> dict:
        """Per-instance telemetry from the decode tokens emitted and the backlog left."""
        batch = self._solve(tps)
        step = self._step(batch)
        resident = tps * step.duration_s
        util = np.minimum(resident / batch, 1.0)
        queued = (backlog > 0) | (np.concatenate(([0.0], backlog[:-1])) > 0)
        from scipy.stats import poisson  # 0.6 s to import: paid by fast mode's runs alone

        tbt = []
        for q in QUANTILES:
            seen = np.minimum(1 + poisson.ppf(q, resident), self.b_max)
            tbt.append(self._step(np.where(queued, self.b_max, seen)).duration_s)
        zeros = np.zeros_like(tps)
        return {
            "gpu_util_ratio": util,
            "sm_active_ratio": util * step.sm_active_fraction,
            "prefill_tps_cache_missed": zeros,
            "prefill_tps_total": zeros,
            "decode_tps": tps,
            **_latencies("ttft", [zeros] * len(QUANTILES), zeros > 0),
            **_latencies("tbt", tbt, tps > 0),
            "queue_depth": _mean_backlog(backlog, n) / max(self.mix.decode_tokens, 1.0),
            "running_requests": resident,
            "kv_usage_ratio": np.minimum(
                resident * self.mix.decode_footprint / self.kv_capacity, 1.0
            ),
        }
