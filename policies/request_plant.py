"""The request-level closed loop as a plant: every scale action placed, every request simulated.

The same :func:`policies.loop.run_controller` that drives the fast-mode fleet drives this
plant, so a policy is checked at request level exactly as it was backtested in fast mode. An
action is first placed on the topology by the scheduler (Algorithm 4, docs/scheduler.md);
what the placement reached becomes :class:`simulator.closed_loop.ScaleAction` s for the
simulator, an added instance carrying its Deployment Group's KV bandwidth factor
(:mod:`scheduler.bandwidth`: 1.0 within an S2 switch, 0.8 across, paper §5.4.2). A shortfall
(the topology is full) is not retried here: the controller sees the instances that run and
asks again.

Per interval each pool reports what its instances reported: instances present (paid: starting,
ready, draining, warm), instances ready throughout, and the mean over ready instances of each
canonical metric (latency quantiles are means of the instances' quantiles, as in
:func:`signals.role_series`). Live counts come from the simulator's lifecycle.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from scheduler import (
    SCALE_OUT,
    AllocationRecord,
    PlacementState,
    ScaleRequest,
    ServiceRequirements,
    Topology,
    outcomes_to_frame,
    place_cycle,
    plan_to_frame,
)
from scheduler.bandwidth import group_kv_bandwidth_factor
from simulator import ClusterSpec, LifecycleSpec, SimulationResult
from simulator.closed_loop import ClosedLoopSimulation, ScaleAction
from simulator.cluster import PoolSpec
from simulator.fluid_load import load_from_requests
from simulator.fluid_loop import METRICS, LoopTelemetry, PoolInterval


class RequestPlant:
    """A simulated P/D cluster at request level, placed on a topology, for the control loop.

    Parameters
    ----------
    requests : pl.DataFrame
        Canonical request frame, replayed at its arrival times.
    cluster : ClusterSpec
        The starting cluster; the topology must host it on the GPU types it runs.
    service : str
    start : datetime
        Time-zone-aware instant of ``arrival_s == 0``.
    topology : Topology
    requirements : ServiceRequirements
        The service's placement needs (GPU types, affinity, P/D ratio of its groups).
    interval_s : float
        Telemetry interval.
    lifecycle : LifecycleSpec, optional
        Startup delays (the simulator's defaults when omitted).

    Raises
    ------
    ValueError
        If the topology cannot host the starting cluster as it runs.
    """

    def __init__(
        self,
        requests: pl.DataFrame,
        cluster: ClusterSpec,
        *,
        service: str,
        start: datetime,
        topology: Topology,
        requirements: ServiceRequirements,
        interval_s: float = 15.0,
        lifecycle: LifecycleSpec | None = None,
    ) -> None:
        self._specs = (*cluster.prefill_pools, *cluster.decode_pools)
        self._keys = [(p.role, p.gpu_type, p.tp) for p in self._specs]
        self._service = service
        self._topology = topology
        self._needs = {service: requirements}
        first = place_cycle(
            topology,
            PlacementState.empty(),
            [
                ScaleRequest(service, "prefill", sum(p.count for p in cluster.prefill_pools)),
                ScaleRequest(service, "decode", sum(p.count for p in cluster.decode_pools)),
            ],
            self._needs,
            cycle=0,
        )
        _check_hosts_cluster(first.records, cluster)
        self._state = first.state
        self._records = list(first.records)
        self._outcomes = list(first.outcomes)
        self._sim = ClosedLoopSimulation(
            requests,
            cluster,
            service=service,
            start=start,
            interval_s=interval_s,
            lifecycle=lifecycle,
        )
        self.load = load_from_requests(requests, start, interval_s)
        shape = (len(self._specs), self.load.count)
        self._provisioned = np.zeros(shape, dtype=np.int64)
        self._ready = np.zeros(shape, dtype=np.int64)
        self._metrics = np.full((len(self._specs), len(METRICS), self.load.count), np.nan)
        self.t = 0

    @property
    def pools(self) -> tuple[PoolSpec, ...]:
        return self._specs

    def advance(self) -> tuple[PoolInterval, ...]:
        """Run interval ``t``; each pool's telemetry of it."""
        t = self.t
        interval_s = self.load.interval_s
        samples = self._sim.advance((t + 1) * interval_s).instance_samples
        by_pool = samples.partition_by(
            "role", "gpu_type", "gpus_per_instance", as_dict=True, include_key=False
        )
        out = []
        for j, key in enumerate(self._keys):
            rows = by_pool.get(key, samples.clear())
            ready_rows = rows.filter(pl.col("ready"))
            means = ready_rows.select(pl.col(name).mean() for name in METRICS).row(0)
            metrics = {
                name: math.nan if v is None else v for name, v in zip(METRICS, means, strict=True)
            }
            self._provisioned[j, t] = rows.height
            self._ready[j, t] = ready_rows.height
            self._metrics[j, :, t] = list(metrics.values())
            ready, starting = self._sim.live_counts(*key)
            out.append(
                PoolInterval(
                    self._specs[j], rows.height, ready, starting, metrics, ready_rows.height
                )
            )
        self.t = t + 1
        return tuple(out)

    def scale(self, actions: Sequence[ScaleAction]) -> None:
        """Place the actions on the topology, then start or drain what the placement reached."""
        deltas = Counter()
        for action in actions:
            deltas[action.role] += action.delta
        keep_warm_s = max((a.keep_warm_s for a in actions), default=0.0)
        placed = place_cycle(
            self._topology,
            self._state,
            [ScaleRequest(self._service, role, delta) for role, delta in sorted(deltas.items())],
            self._needs,
            cycle=self.t,
        )
        self._state = placed.state
        self._records.extend(placed.records)
        self._outcomes.extend(placed.outcomes)
        self._sim.scale(_scale_actions(placed.records, self._state, self._topology, keep_warm_s))

    def telemetry(self) -> LoopTelemetry:
        return LoopTelemetry(
            self.load, self._specs, self._provisioned, self._ready, self._metrics, self.t
        )

    def result(self) -> SimulationResult:
        """The whole run (every request to its end) and its per-request outcomes."""
        return self._sim.result()

    @property
    def plan(self) -> pl.DataFrame:
        """The placement records of every cycle (cycle 0 places the starting cluster)."""
        return plan_to_frame(self._records)

    @property
    def outcomes(self) -> pl.DataFrame:
        """What each cycle's placement requests reached."""
        return outcomes_to_frame(self._outcomes)


def _pool_key(record: AllocationRecord) -> tuple[str, str, int]:
    """(role, GPU type, TP) of a record's instances: the simulator's pool key."""
    return record.role, record.gpu_type, record.gpus // record.instances


def _check_hosts_cluster(records: tuple[AllocationRecord, ...], cluster: ClusterSpec) -> None:
    placed: Counter[tuple[str, str, int]] = Counter()
    for record in records:
        placed[_pool_key(record)] += record.instances
    running = Counter(
        {
            (p.role, p.gpu_type, p.tp): p.count
            for p in (*cluster.prefill_pools, *cluster.decode_pools)
        }
    )
    if placed != running:
        raise ValueError(
            f"the topology cannot host the starting cluster as it runs: it runs "
            f"{dict(running)} (role, GPU type, TP: instances) but placement made {dict(placed)}"
        )


def _scale_actions(
    records: tuple[AllocationRecord, ...],
    state: PlacementState,
    topology: Topology,
    keep_warm_s: float,
) -> list[ScaleAction]:
    """The simulator's actions for one cycle's records: scale-outs first (grouped by pool and
    the KV bandwidth factor of the Deployment Group they joined), then scale-ins by pool."""
    groups = {group.id: group for group in state.groups}
    added: Counter[tuple[str, str, int, float]] = Counter()
    removed: Counter[tuple[str, str, int]] = Counter()
    for record in records:
        if record.action == SCALE_OUT:
            factor = group_kv_bandwidth_factor(topology, groups[record.deployment_group])
            added[(*_pool_key(record), factor)] += record.instances
        else:
            removed[_pool_key(record)] += record.instances
    return [
        ScaleAction(role, gpu_type, tp, count, kv_bandwidth_factor=factor)
        for (role, gpu_type, tp, factor), count in sorted(added.items())
    ] + [
        ScaleAction(role, gpu_type, tp, -count, keep_warm_s=keep_warm_s)
        for (role, gpu_type, tp), count in sorted(removed.items())
    ]
