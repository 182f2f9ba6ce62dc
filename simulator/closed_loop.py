"""Closed-loop simulation: advance a P/D cluster interval by interval and scale it in between.

A backtest (in ``policies/``) alternates :meth:`ClosedLoopSimulation.advance`, which runs the
cluster up to an instant and returns the telemetry of the intervals completed by then, with
:meth:`ClosedLoopSimulation.scale`, which applies plain :class:`ScaleAction` s at that instant.
The simulator knows nothing of the policy that chose them.

Scaling goes through each instance's lifecycle (:mod:`simulator.lifecycle`): a new instance
serves only after the startup delay of its GPU type (:class:`simulator.cluster.LifecycleSpec`),
a removed one drains its work first, and one removed with ``keep_warm_s`` stays warm for that
long, so that a scale-out of its pool within the window restores it without the delay (soft
scale-in). A scale-out first takes back instances of its pool still draining, then warm ones,
and only then launches new ones. The router only ever sees ready instances.

With no actions, advancing to the end replays exactly what :func:`simulator.engine.simulate`
does: the same events in the same order, hence the same results.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from simulator.cluster import DECODE, PREFILL, ClusterSpec, LifecycleSpec, PoolSpec
from simulator.engine import SimulationResult, _Simulation
from simulator.lifecycle import GONE, READY, STARTING
from simulator.log_window import LogWindow
from simulator.metrics import Bins, instance_samples, service_load
from simulator.traces import validate_requests
from telemetry.schema import INSTANCE_SAMPLES_SCHEMA, SERVICE_LOAD_SCHEMA


@dataclass(frozen=True)
class ScaleAction:
    """Add (``delta > 0``) or remove (``delta < 0``) instances of one pool.

    Attributes
    ----------
    role : str
        ``prefill`` or ``decode``.
    gpu_type : str
        Key of :data:`simulator.hardware.GPUS`.
    tp : int
        Tensor-parallel degree (GPUs per instance).
    delta : int
        Instances to add or remove.
    kv_bandwidth_factor : float
        For added instances: share of the cluster's ``kv_transfer_gbps`` their KV transfers
        reach, from where they are placed (``scheduler.bandwidth`` gives 1.0 within an S2
        switch, 0.8 across). A transfer runs at the smaller factor of its prefill and decode
        instance. Restored warm instances keep the factor of their placement.
    keep_warm_s : float
        For removed instances: seconds to keep each one warm once drained (0: release it).
    """

    role: str
    gpu_type: str
    tp: int
    delta: int
    kv_bandwidth_factor: float = 1.0
    keep_warm_s: float = 0.0

    def __post_init__(self) -> None:
        PoolSpec(self.role, self.gpu_type, self.tp, 0)  # validates role, GPU type and TP
        if self.role not in (PREFILL, DECODE):
            raise ValueError(f"a scale action needs role prefill or decode, got {self.role!r}")
        if not 0 < self.kv_bandwidth_factor <= 1 or self.keep_warm_s < 0:
            raise ValueError("kv_bandwidth_factor must be in (0, 1] and keep_warm_s >= 0")


@dataclass(frozen=True)
class IntervalFrames:
    """Telemetry of the intervals completed by one :meth:`ClosedLoopSimulation.advance`."""

    instance_samples: pl.DataFrame
    service_load: pl.DataFrame


class ClosedLoopSimulation:
    """A P/D cluster replaying ``requests`` that a controller advances and scales.

    Parameters
    ----------
    requests : pl.DataFrame
        Canonical request frame (:data:`simulator.traces.REQUEST_SCHEMA`).
    cluster : ClusterSpec
        The cluster at time 0, ready from the start.
    service : str
        Service name written into the telemetry.
    start : datetime
        Time-zone-aware wall-clock instant of ``arrival_s == 0``.
    interval_s : float
        Telemetry interval; :meth:`advance` returns whole intervals only.
    lifecycle : LifecycleSpec
        Startup delays of new instances.

    Notes
    -----
    Each interval's telemetry is computed once, when first complete, and reads as it does in
    :meth:`result`: work running across the interval's end counts in it up to that end, events
    after it are left for later intervals. Computing it reads only the log rows that can still
    count (:class:`simulator.log_window.LogWindow`), so a call costs time in proportion to the
    new intervals, not to the run so far.
    """

    def __init__(
        self,
        requests: pl.DataFrame,
        cluster: ClusterSpec,
        *,
        service: str,
        start: datetime,
        interval_s: float = 15.0,
        lifecycle: LifecycleSpec | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be time-zone aware (UTC)")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._requests = validate_requests(requests)
        self._sim = _Simulation(self._requests, cluster)
        self._spec = lifecycle or LifecycleSpec()
        self._service, self._start, self._interval_s = service, start, interval_s
        self._emitted = 0  # intervals already returned by advance
        self._log = LogWindow(self._sim.recorder)
        self._arrival_s = self._requests["arrival_s"].to_numpy()
        self._largest_prompt = max(self._sim.table.input_tokens, default=0)
        table = self._sim.table
        self._largest_request = max(
            (i + o for i, o in zip(table.input_tokens, table.output_tokens, strict=True)),
            default=0,
        )

    @property
    def now(self) -> float:
        """Seconds since ``start`` the cluster has been advanced to."""
        return self._sim.now

    def live_counts(self, role: str, gpu_type: str, tp: int) -> tuple[int, int]:
        """(ready, starting) instances of one pool now: what an orchestrator reports live."""
        sim = self._sim
        key = (role, gpu_type, tp)
        pool = sim.prefill if role == PREFILL else sim.decode
        ready = sum(1 for i in self._routable(role) if sim.pool_key(i.index) == key)
        starting = sum(
            1
            for i in pool
            if sim.pool_key(i.index) == key and sim.lifecycle.state(i.index) == STARTING
        )
        return ready, starting

    def advance(self, until_s: float) -> IntervalFrames:
        """Run the cluster up to ``until_s``; return the telemetry of the intervals completed
        since the last call (possibly none)."""
        if until_s < self.now:
            raise ValueError(f"cannot advance backwards: now {self.now}, until_s {until_s}")
        sim = self._sim
        sim.run(until_s)
        complete = int(until_s // self._interval_s)
        if complete <= self._emitted:
            return IntervalFrames(
                instance_samples=pl.DataFrame(schema=INSTANCE_SAMPLES_SCHEMA),
                service_load=pl.DataFrame(schema=SERVICE_LOAD_SCHEMA),
            )
        first, self._emitted = self._emitted, complete
        bins = Bins(self._start, self._interval_s, complete - first, first)
        samples = instance_samples(
            self._log.take(bins.end_s),
            sim.infos,
            bins,
            self._service,
            mid_run=True,
            pending=sim.pending_strides(bins.end_s),
            presence=sim.lifecycle.presence(bins),
        )
        lo, hi = np.searchsorted(self._arrival_s, [bins.start_s, bins.end_s])
        return IntervalFrames(
            instance_samples=samples, service_load=self._service_load(self._requests[lo:hi], bins)
        )

    def scale(self, actions: list[ScaleAction] | tuple[ScaleAction, ...]) -> None:
        """Apply ``actions`` now, in order.

        Raises
        ------
        ValueError
            If an action removes more instances than its pool has starting or ready, leaves a
            role with no ready instance, or adds instances too small for some request.
        """
        for action in actions:
            if action.delta > 0:
                self._scale_out(action)
            elif action.delta < 0:
                self._scale_in(action)

    def result(self) -> SimulationResult:
        """Run until every request finished; return the whole run, as
        :func:`simulator.engine.simulate` does (instances report while they exist)."""
        sim = self._sim
        end_s = sim.run()
        bins = Bins.covering(self._start, self._interval_s, end_s)
        return SimulationResult(
            instance_samples=instance_samples(
                sim.recorder,
                sim.infos,
                bins,
                self._service,
                presence=sim.lifecycle.presence(bins),
            ),
            service_load=self._service_load(self._requests, bins),
            requests=sim.table.to_frame([info.instance_id for info in sim.infos]),
        )

    def _service_load(self, requests: pl.DataFrame, bins: Bins) -> pl.DataFrame:
        return service_load(
            requests["arrival_s"].to_numpy(),
            requests["input_tokens"].to_numpy(),
            requests["output_tokens"].to_numpy(),
            bins,
            self._service,
        )

    def _routable(self, role: str) -> list:
        return self._sim.ready_prefill if role == PREFILL else self._sim.ready_decode

    def _make_ready(self, instance) -> None:
        """Open ``instance`` to the router (kept in index order, so that ties stay stable)."""
        sim = self._sim
        insort(self._routable(sim.infos[instance.index].role), instance, key=lambda i: i.index)

    def _on_started(self, instance) -> None:
        if self._sim.lifecycle.state(instance.index) == STARTING:
            self._sim.lifecycle.set(instance, self._sim.now, READY)
            self._make_ready(instance)

    def _scale_out(self, action: ScaleAction) -> None:
        sim = self._sim
        key = (action.role, action.gpu_type, action.tp)
        startup_s = self._spec.startup_of(action.gpu_type)
        for _ in range(action.delta):
            pool = sim.prefill if action.role == PREFILL else sim.decode
            same_pool = [i for i in pool if sim.pool_key(i.index) == key]
            restored = sim.lifecycle.take_back(key, same_pool, sim.now)
            if restored is not None:
                self._make_ready(restored)
                continue
            instance = sim.new_instance(*key, kv_factor=action.kv_bandwidth_factor)
            self._check_fits(instance)
            sim.lifecycle.start(instance, sim.now)
            sim.schedule_lifecycle(sim.now + startup_s, self._on_started, instance)

    def _check_fits(self, instance) -> None:
        need = (
            self._largest_prompt
            if self._sim.infos[instance.index].role == PREFILL
            else (self._largest_request)
        )
        if need > instance.kv_capacity_tokens:
            raise ValueError(
                f"{self._sim.infos[instance.index].instance_id} holds "
                f"{instance.kv_capacity_tokens} KV tokens, less than a request needs ({need})"
            )

    def _scale_in(self, action: ScaleAction) -> None:
        sim = self._sim
        key = (action.role, action.gpu_type, action.tp)
        pool = sim.prefill if action.role == PREFILL else sim.decode
        starting = [
            i
            for i in reversed(pool)
            if sim.pool_key(i.index) == key and sim.lifecycle.state(i.index) == STARTING
        ]
        routable = self._routable(action.role)
        ready = sorted(
            (i for i in routable if sim.pool_key(i.index) == key),
            key=lambda i: (i.router_load, -i.index),
        )
        count = -action.delta
        if count > len(starting) + len(ready):
            raise ValueError(
                f"cannot remove {count} {key} instances: {len(starting)} starting, "
                f"{len(ready)} ready"
            )
        drained = ready[: max(0, count - len(starting))]
        if len(drained) >= len(routable):
            raise ValueError(f"removing {count} {key} instances leaves no ready {action.role}")
        for instance in starting[:count]:
            sim.lifecycle.set(instance, sim.now, GONE)
        for instance in drained:
            routable.remove(instance)
            sim.lifecycle.drain(instance, sim.now, action.keep_warm_s)
            sim.retire_if_idle(instance)
