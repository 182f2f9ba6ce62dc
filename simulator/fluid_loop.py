"""Fast mode in closed loop: the fluid model stepped one interval at a time, scaled in between.

:func:`simulator.fluid.simulate_fluid` solves every interval at once for instance counts fixed
in advance. A controller decides counts from what it has seen, so a backtest needs the same
model one interval at a time (:class:`FluidLoop`), with the lifecycle the request-level
closed loop has (:mod:`simulator.closed_loop`): new instances serve only after their GPU
type's startup delay, removed ones drain, and removed ones may stay warm for a window so that a
later scale-out restores them at once (soft scale-in).

Same mechanisms as :mod:`simulator.fluid`, evaluated per step in plain floats:

- **Per-instance response tables.** Everything an instance reports is a function of the tokens
  it serves per second (and, for prefill, of how many instances share the queue: Erlang C).
  Each pool tabulates :class:`simulator.fluid._PrefillPool` / ``_DecodePool`` metrics on a
  grid of per-instance load from 0 to capacity once (per instance count for prefill, lazily)
  and interpolates linearly: ``GRID`` points keep the interpolation error below the
  telemetry's digits for the smooth curves, which only bend near capacity.
- **Backlog.** Lindley's recursion one step at a time, ``q_t = max(0, q_{t-1} + a_t - c_t)``,
  with ``c_t`` the capacity of the instances ready in interval ``t``; a backlog adds its wait
  to TTFT and holds decode steps at the full batch, as in the vectorised model.
- **When tokens count.** Served work is emitted by a fixed causal kernel per pool (as
  :func:`simulator.fluid._spread`), taken at the pool's work time at half its capacity: the
  vectorised model takes the run's served-weighted mean, which a step-by-step run cannot know.

Lifecycle, per pool, in whole intervals (telemetry's granularity): an instance launched at an
interval boundary is ``starting`` (paid, no traffic) for ``ceil(startup_s / interval_s)``
intervals; a scale-in cancels starting instances first (Kubernetes removes unready pods first),
then withdraws ready ones, which drain for one interval (a prefill batch or a decode residence
is seconds, shorter than an interval) and then leave or stay warm for ``keep_warm_s``. A
scale-out takes warm instances back first, ready in the next interval, and launches the rest.
Starting, draining and warm instances are paid for (:attr:`LoopTelemetry.provisioned`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.calibration import default_efficiency
from simulator.closed_loop import ScaleAction
from simulator.cluster import DECODE, PREFILL, ClusterSpec, LifecycleSpec, PoolSpec
from simulator.fluid import _DecodePool, _PrefillPool, _spread
from simulator.fluid_load import FluidLoad
from simulator.hardware import GPUS, MODELS
from simulator.metrics import QUANTILES
from simulator.perf_model import PerfModel
from telemetry.schema import INSTANCE_METRIC_COLUMNS

#: Grid points per table, from 0 to an instance's capacity.
GRID = 256

#: The metric columns every interval reports per pool, in :data:`INSTANCE_METRIC_COLUMNS` order.
METRICS = tuple(INSTANCE_METRIC_COLUMNS)
_TTFT = [f"ttft_p{round(q * 100)}_s" for q in QUANTILES]
_TBT = [f"tbt_p{round(q * 100)}_s" for q in QUANTILES]
_NO_SAMPLE = dict.fromkeys(METRICS, math.nan)
#: Columns read off a table (besides the role's latency quantiles); the rest are zero or NaN
#: for the role, or come from the backlog. Queue depth's table value is without a backlog.
_TABLED = ("gpu_util_ratio", "sm_active_ratio", "running_requests", "kv_usage_ratio", "queue_depth")


@dataclass(frozen=True)
class PoolInterval:
    """One pool in one interval: what it ran and what each of its ready instances reported.

    ``ready`` and ``starting`` are live counts at the interval's end; ``metrics`` maps
    :data:`METRICS` to per-instance values (NaN where the role has none, or when no instance
    was ready) averaged over ``reporting`` instances, those ready throughout the interval.
    """

    pool: PoolSpec
    provisioned: int
    ready: int
    starting: int
    metrics: dict[str, float]
    reporting: int


@dataclass(frozen=True)
class LoopTelemetry:
    """Per-interval arrays of a :class:`FluidLoop` run, per pool (index ``j``).

    Attributes
    ----------
    load : FluidLoad
    pools : tuple of PoolSpec
    provisioned, ready : np.ndarray
        Shape ``(pools, intervals)``: instances paid for (starting, ready, draining, warm) and
        instances ready throughout the interval.
    metrics : np.ndarray
        Shape ``(pools, len(METRICS), intervals)``: per-instance values of :data:`METRICS`.
    intervals : int
        Intervals advanced so far (the arrays' valid prefix).
    """

    load: FluidLoad
    pools: tuple[PoolSpec, ...]
    provisioned: np.ndarray
    ready: np.ndarray
    metrics: np.ndarray
    intervals: int

    def metric(self, name: str) -> np.ndarray:
        """``(pools, intervals)`` array of one metric."""
        return self.metrics[:, METRICS.index(name), : self.intervals]


class _Table:
    """Columns of a pool's per-instance metrics on a uniform load grid, linearly interpolated."""

    def __init__(self, capacity: float, columns: dict[str, np.ndarray]) -> None:
        self.capacity = capacity
        self.per_step = GRID / capacity
        self.names = tuple(columns)
        self.columns = [c.tolist() for c in columns.values()]

    def at(self, tps: float) -> list[float]:
        f = min(max(tps, 0.0), self.capacity) * self.per_step
        i = min(int(f), GRID - 1)
        w = f - i
        return [c[i] + w * (c[i + 1] - c[i]) for c in self.columns]


class _LoopPool:
    """One pool's state: its instances by lifecycle stage, backlog, and emission kernel."""

    def __init__(self, spec: PoolSpec, model, startup_intervals: int, interval_s: float) -> None:
        self.spec = spec
        self.model = model  # _PrefillPool or _DecodePool
        self.capacity = model.capacity_tps
        self.startup_intervals = startup_intervals
        self.ready = spec.count
        self.starting: list[int] = []  # interval index from which each serves
        self.draining: list[int] = []  # withdrawn at the last boundary: intervals to keep warm
        self.warm: list[int] = []  # last interval each warm instance is kept (and paid)
        self.backlog = 0.0
        self.work_s = float(model.work_s(np.full(1, self.capacity / 2), np.ones(1))[0])
        if spec.role == DECODE:  # a backlog holds decode steps at the full batch
            self.full_step_s = float(model._step(np.array([model.b_max])).duration_s[0])
        self.grid = np.linspace(0.0, self.capacity, GRID + 1)
        self.tables: dict[int, _Table] = {}
        self.kernel: list[float] = []
        self.pending = [0.0]
        self.interval_s = interval_s
        self.last = _NO_SAMPLE  # metrics of the last interval advanced

    def set_kernel(self, delay_s: float) -> None:
        """Emission kernel: a prefill batch's tokens at its end, a decode request's over its
        residence, after ``delay_s`` (the prefill that came first)."""
        delay, span = (0.0, self.work_s) if self.model.emits_over_work else (self.work_s, 0.0)
        unit = np.zeros(64)
        unit[0] = 1.0
        self.kernel = _spread(unit, self.interval_s, delay_s + delay, span).tolist()
        while len(self.kernel) > 1 and self.kernel[-1] == 0.0:
            self.kernel.pop()
        self.pending = [0.0] * len(self.kernel)

    def table(self, n: int) -> _Table:
        key = n if self.spec.role == PREFILL else 1  # decode's response does not depend on n
        if key not in self.tables:
            grid = self.grid
            counts = np.full(grid.size, key)
            values = self.model.metrics(grid, np.zeros(grid.size), counts)
            latency = _TTFT if self.spec.role == PREFILL else _TBT
            columns = {name: values[name] for name in (*_TABLED, *latency)}
            self.tables[key] = _Table(self.capacity, columns)
        return self.tables[key]

    @property
    def provisioned(self) -> int:
        return self.ready + len(self.starting) + len(self.draining) + len(self.warm)


class FluidLoop:
    """A P/D cluster in fast mode that a controller advances one interval at a time and scales.

    Parameters
    ----------
    load : FluidLoad
        Offered load per interval; the loop's interval is ``load.interval_s``.
    cluster : ClusterSpec
        The cluster at interval 0, ready from the start.
    lifecycle : LifecycleSpec, optional
        Startup delay per GPU type (the simulator's default when omitted).

    Notes
    -----
    Agreement with :func:`simulator.fluid.simulate_fluid` at fixed counts is tested
    (tests/simulator/test_fluid_loop.py); what differs is the emission kernel's time scale and
    the interpolation between grid points.
    """

    def __init__(
        self, load: FluidLoad, cluster: ClusterSpec, *, lifecycle: LifecycleSpec | None = None
    ) -> None:
        lifecycle = lifecycle or LifecycleSpec()
        self.load = load
        self.interval_s = load.interval_s
        efficiency = cluster.efficiency or default_efficiency()
        model = MODELS[cluster.model]
        grid_load = FluidLoad(
            start=load.start,
            interval_s=load.interval_s,
            requests=np.zeros(GRID + 1),
            prompt_tokens=np.zeros(GRID + 1),
            decode_tokens=np.zeros(GRID + 1),
            mix=load.mix,
        )
        self._pools: list[_LoopPool] = []
        for spec in (*cluster.prefill_pools, *cluster.decode_pools):
            perf = PerfModel(model, GPUS[spec.gpu_type], spec.tp, efficiency)
            fluid = (
                _PrefillPool(perf, cluster, grid_load)
                if spec.role == PREFILL
                else _DecodePool(perf, cluster, load.mix)
            )
            startup = math.ceil(lifecycle.startup_of(spec.gpu_type) / load.interval_s - 1e-9)
            self._pools.append(_LoopPool(spec, fluid, startup, load.interval_s))
        prefill = [(j, p) for j, p in enumerate(self._pools) if p.spec.role == PREFILL]
        decode = [(j, p) for j, p in enumerate(self._pools) if p.spec.role == DECODE]
        prefill_s = sum(p.work_s for _, p in prefill) / len(prefill)
        for _, pool in prefill:
            pool.set_kernel(0.0)
        for _, pool in decode:
            pool.set_kernel(prefill_s)
        self._roles = (prefill, decode)
        ratio = load.mix.decode_tokens / load.mix.prompt_tokens
        self._decode_per_prompt = np.divide(
            load.decode_tokens,
            load.prompt_tokens,
            out=np.full(load.count, ratio),
            where=load.prompt_tokens > 0,
        ).tolist()
        self._prompt_tokens = load.prompt_tokens.tolist()
        shape = (len(self._pools), load.count)
        self._provisioned = np.zeros(shape, dtype=np.int64)
        self._ready = np.zeros(shape, dtype=np.int64)
        self._metrics = np.full((len(self._pools), len(METRICS), load.count), np.nan)
        self.t = 0

    @property
    def pools(self) -> tuple[PoolSpec, ...]:
        """The pools, prefill first, with their counts at the start."""
        return tuple(p.spec for p in self._pools)

    def capacity_tps(self, pool: int) -> float:
        """Most tokens/s one instance of pool ``pool`` serves (prompt tokens for prefill)."""
        return self._pools[pool].capacity

    def advance(self) -> tuple[PoolInterval, ...]:
        """Run interval ``t`` and return each pool's telemetry of it; ``t`` moves on by one."""
        t = self.t
        if t >= self.load.count:
            raise ValueError("the load has no more intervals")
        for pool in self._pools:
            pool.ready += sum(1 for at in pool.starting if at <= t)
            pool.starting = [at for at in pool.starting if at > t]
        prefill, decode = self._roles
        if t == 0:
            self._steady_start()
        served = self._serve_role(prefill, self._prompt_tokens[t])
        self._serve_role(decode, served * self._decode_per_prompt[t])
        out = []
        for j, pool in enumerate(self._pools):
            self._provisioned[j, t] = pool.provisioned
            self._ready[j, t] = pool.ready
            out.append(
                PoolInterval(
                    pool.spec,
                    pool.provisioned,
                    pool.ready,
                    len(pool.starting),
                    pool.last,
                    pool.ready,
                )
            )
            # Draining instances leave, or go warm, at the end of this interval.
            pool.warm = [until for until in pool.warm if until > t]
            pool.warm.extend(t + keep for keep in pool.draining if keep > 0)
            pool.draining = []
        self.t = t + 1
        return tuple(out)

    def _steady_start(self) -> None:
        """Start as if interval 0's load had been served for ever: work served before it is
        still being emitted (without this the first intervals under-report TPS)."""
        prefill, decode = self._roles
        prompt = self._prompt_tokens[0]
        for offered, pools in ((prompt, prefill), (prompt * self._decode_per_prompt[0], decode)):
            total = sum(p.ready * p.capacity for _, p in pools)
            for _, pool in pools:
                steady = min(
                    offered * pool.ready * pool.capacity / total,
                    pool.ready * pool.capacity * self.interval_s,
                )
                pool.pending = [steady * sum(pool.kernel[k + 1 :]) for k in range(len(pool.kernel))]

    def _serve_role(self, pools: list[tuple[int, _LoopPool]], offered: float) -> float:
        """Queue a role's offered tokens on its pools by capacity share; record telemetry.
        Returns the tokens the role served for this interval's queue."""
        dt = self.interval_s
        capacities = [p.ready * p.capacity * dt for _, p in pools]
        total = sum(capacities)
        served_all = 0.0
        for (j, pool), cap in zip(pools, capacities, strict=True):
            share = cap / total if total > 0 else 1.0 / len(pools)
            before = pool.backlog
            arrived = offered * share
            after = max(0.0, before + arrived - cap)
            served = before + arrived - after
            pool.backlog = after
            served_all += served
            pending = pool.pending
            for k, weight in enumerate(pool.kernel):
                pending[k] += weight * served
            emitted = pending.pop(0)
            pending.append(0.0)
            self._record(j, pool, emitted / dt, before, after)
        return served_all

    def _record(self, j: int, pool: _LoopPool, tps: float, before: float, after: float) -> None:
        n = pool.ready
        values = dict(_NO_SAMPLE)
        pool.last = values
        if n == 0:
            return
        per_instance = tps / n
        table = pool.table(n)
        values.update(zip(table.names, table.at(per_instance), strict=True))
        mean_backlog = (before + after) / 2 / n
        model = pool.model
        if pool.spec.role == PREFILL:
            wait_s = mean_backlog / pool.capacity
            for name in _TTFT:
                values[name] += wait_s
            values["queue_depth"] += mean_backlog / model.prompt
            values["prefill_tps_cache_missed"] = values["prefill_tps_total"] = per_instance
            values["decode_tps"] = 0.0
        else:
            if before > 0 or after > 0:
                for name in _TBT:
                    values[name] = pool.full_step_s
            values["queue_depth"] = mean_backlog / max(model.mix.decode_tokens, 1.0)
            values["prefill_tps_cache_missed"] = values["prefill_tps_total"] = 0.0
            values["decode_tps"] = per_instance
        self._metrics[j, :, self.t] = [values[name] for name in METRICS]

    def scale(self, actions: Sequence[ScaleAction]) -> None:
        """Apply actions at the boundary after the last advanced interval.

        A scale-out takes warm instances back (ready next interval), then launches new ones
        (ready after the startup delay); a scale-in cancels starting instances, then withdraws
        ready ones (draining next interval, then warm for ``keep_warm_s`` or gone).
        ``kv_bandwidth_factor`` has no effect: fast mode prices no KV transfer.
        """
        for action in actions:
            pool = self._pool_of(action)
            if action.delta > 0:
                undrain = min(action.delta, len(pool.draining))
                del pool.draining[:undrain]
                pool.ready += undrain
                restore = min(action.delta - undrain, len(pool.warm))
                pool.warm.sort()
                del pool.warm[:restore]
                pool.starting.extend([self.t] * restore)
                launch = action.delta - undrain - restore
                pool.starting.extend([self.t + pool.startup_intervals] * launch)
            elif action.delta < 0:
                remove = -action.delta
                cancel = min(remove, len(pool.starting))
                pool.starting.sort()
                pool.starting = pool.starting[: len(pool.starting) - cancel]
                withdraw = min(remove - cancel, pool.ready)
                pool.ready -= withdraw
                keep = math.ceil(action.keep_warm_s / self.interval_s - 1e-9)
                pool.draining.extend([keep] * withdraw)

    def _pool_of(self, action: ScaleAction) -> _LoopPool:
        for pool in self._pools:
            spec = pool.spec
            if (spec.role, spec.gpu_type, spec.tp) == (action.role, action.gpu_type, action.tp):
                return pool
        raise ValueError(
            f"the cluster has no {action.role} pool of {action.tp} x {action.gpu_type}"
        )

    def telemetry(self) -> LoopTelemetry:
        """What the run produced so far."""
        return LoopTelemetry(
            self.load,
            self.pools,
            self._provisioned,
            self._ready,
            self._metrics,
            self.t,
        )
