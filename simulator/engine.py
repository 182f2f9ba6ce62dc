"""Discrete-event replay of a request trace on a P/D disaggregated or a colocated cluster.

A request's life: it arrives and is routed (join-shortest-queue) to a prefill instance; a batch
computes its prompt and emits its first token; it is routed to a decode instance, waits for
admission, pulls its KV over the transfer link (``prompt tokens * KV bytes per token /
bandwidth``), then joins continuous batching until its last token. One event heap orders
arrivals, batch ends, transfer ends and decode stride ends; instances are passive state
machines (:mod:`simulator.prefill`, :mod:`simulator.decode`) and this module wires their events
together.

A decode instance runs many steps as one event (a stride, up to its next finish). When a KV
transfer ends mid-stride, the stride is cut at the next step boundary and its pending end event
is cancelled: cancelled events stay in the heap and are dropped when popped (lazy deletion), so
they neither run nor count as the run's last event.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from simulator.calibration import default_efficiency
from simulator.cluster import COLOCATED, PREFILL, ClusterSpec, ColocatedClusterSpec
from simulator.colocated import ColocatedInstance
from simulator.decode import DecodeInstance
from simulator.engine_calibration import engine_efficiency
from simulator.hardware import GPUS, MODELS
from simulator.lifecycle import READY, Lifecycle
from simulator.metrics import Bins, InstanceInfo, instance_samples, service_load
from simulator.perf_model import PerfModel
from simulator.prefill import PrefillInstance
from simulator.prefix_cache import PrefixCache
from simulator.recorder import Recorder
from simulator.request_table import RequestTable
from simulator.router import longest_cached_prefix, shortest_queue
from simulator.traces import validate_requests


@dataclass(frozen=True)
class SimulationResult:
    """Telemetry and per-request outcomes of one simulated run.

    Attributes
    ----------
    instance_samples : pl.DataFrame
        Canonical ``instance_samples`` (one row per instance per interval).
    service_load : pl.DataFrame
        Canonical ``service_load`` (offered load per interval), on the same interval grid.
    requests : pl.DataFrame
        One row per request, in arrival order: ``arrival_s``, ``input_tokens``,
        ``output_tokens``, ``cached_tokens``, ``prefill_instance``, ``prefill_start_s``,
        ``first_token_s``, ``ttft_s``, ``decode_instance``, ``decode_start_s`` (joined the
        decode batch), ``finish_s``. Decode columns are null for single-token requests.
    """

    instance_samples: pl.DataFrame
    service_load: pl.DataFrame
    requests: pl.DataFrame


def instances_that_hold(
    cluster: ClusterSpec, tokens: int, prefer: tuple[str, ...] = (), shown: int = 3
) -> list[str]:
    """The smallest instance (fewest GPUs) of each GPU type whose KV cache holds ``tokens`` of
    the cluster's model, as ``"4 x H20 (624,000 tokens)"``: GPU types in ``prefer`` (the
    pool's own) first, then the fewest GPUs, ``shown`` of them."""
    efficiency = cluster.efficiency or default_efficiency()
    found = []
    for name, gpu in sorted(GPUS.items()):
        for tp in (1, 2, 4, 8):
            perf = PerfModel(MODELS[cluster.model], gpu, tp, efficiency)
            try:
                capacity = perf.kv_capacity_tokens(cluster.kv_memory_fraction)
            except ValueError:  # the weights alone do not fit
                continue
            if capacity >= tokens:
                text = f"{tp} x {name} ({capacity:,} tokens)"
                found.append((name not in prefer, tp, gpu.memory_gb, text))
                break
    return [text for *_, text in sorted(found)[:shown]]


class _Simulation:
    """One run: the cluster's instances, the event heap and the handlers that connect them.

    Scaling (:mod:`simulator.closed_loop`) adds and removes instances between calls to
    :meth:`run`; its events (an instance becoming ready, a warm instance expiring) live in a
    heap of their own, so a run without scaling pops exactly the events it always did.
    """

    def __init__(self, requests: pl.DataFrame, cluster: ClusterSpec) -> None:
        self.table = RequestTable(requests)
        self.recorder = Recorder()
        self.cluster = cluster
        model = MODELS[cluster.model]
        self.kv_transfer_s_per_token = model.kv_bytes_per_token / (cluster.kv_transfer_gbps * 1e9)
        self.use_cache = requests["prefix_hashes"].list.len().sum() > 0
        self.infos: list[InstanceInfo] = []
        self.prefill: list[PrefillInstance] = []
        self.decode: list[DecodeInstance] = []
        self.kv_factor: list[float] = []  # per global index: share of kv_transfer_gbps reached
        self.lifecycle = Lifecycle()
        self._perf: dict[tuple[str, int], tuple[PerfModel, int]] = {}
        for pool in (*cluster.prefill_pools, *cluster.decode_pools):
            for _ in range(pool.count):
                self.lifecycle.start(self.new_instance(pool.role, pool.gpu_type, pool.tp), 0.0)
        self.ready_prefill = list(self.prefill)  # routable instances, by index
        self.ready_decode = list(self.decode)
        for instance in (*self.prefill, *self.decode):
            self.lifecycle.set(instance, 0.0, READY)
        self._check_fits()
        self.prefill_of: list[PrefillInstance | None] = [None] * self.table.size
        self.decode_of: list[DecodeInstance | None] = [None] * self.table.size
        self.heap: list[tuple[float, int, Callable, object]] = []
        self.lifecycle_heap: list[tuple[float, int, Callable, object]] = []
        # Arrival ``rid`` has sequence number ``rid``, as if every arrival were pushed first,
        # but only the next one sits in the heap (its arrival pushes the one after): the order
        # of events is the same, and the heap stays small.
        self.sequence = itertools.count(self.table.size)
        self.now = 0.0
        self.last_event_s = 0.0
        self.stride_event: dict[DecodeInstance, int] = {}  # sequence number of its stride end
        self.cancelled: set[int] = set()  # sequence numbers of events to drop when popped
        if self.table.size:
            self.heap.append((self.table.arrival_s[0], 0, self.on_arrival, 0))

    def new_instance(
        self, role: str, gpu_type: str, tp: int, kv_factor: float = 1.0
    ) -> PrefillInstance | DecodeInstance:
        """Instantiate one instance; ids are ``{role}-{gpu}-{k}``, k counting per role.

        Prefix caches exist only when the trace carries prefix hashes.
        """
        cluster = self.cluster
        if (gpu_type, tp) not in self._perf:
            efficiency = cluster.efficiency or default_efficiency()
            perf = PerfModel(MODELS[cluster.model], GPUS[gpu_type], tp, efficiency)
            self._perf[gpu_type, tp] = (perf, perf.kv_capacity_tokens(cluster.kv_memory_fraction))
        perf, capacity = self._perf[gpu_type, tp]
        same_role = self.prefill if role == PREFILL else self.decode
        index = len(self.infos)
        self.infos.append(InstanceInfo(f"{role}-{gpu_type}-{len(same_role)}", role, gpu_type, tp))
        self.kv_factor.append(kv_factor)
        if role == PREFILL:
            blocks = capacity // cluster.prefix_block_tokens
            instance = PrefillInstance(
                index,
                perf,
                cluster.prefill_token_budget,
                capacity,
                PrefixCache(blocks) if self.use_cache else None,
                cluster.prefix_block_tokens,
                self.table,
                self.recorder,
            )
        else:
            instance = DecodeInstance(
                index,
                perf,
                cluster.decode_max_num_seqs,
                capacity,
                self.table,
                self.recorder,
                preempt=cluster.decode_preemption,
            )
        same_role.append(instance)
        return instance

    def _check_fits(self) -> None:
        """Refuse requests no instance could ever hold (they would wait forever), naming the
        first one and the instances, GPU type by type, that would hold the largest."""
        req = self.table
        prefill_cap = min(p.kv_capacity_tokens for p in self.prefill)
        decode_cap = min(d.kv_capacity_tokens for d in self.decode)
        too_large = [
            rid
            for rid in range(req.size)
            if req.input_tokens[rid] > prefill_cap
            or req.input_tokens[rid] + req.output_tokens[rid] > decode_cap
        ]
        if not too_large:
            return
        rid = too_large[0]
        prompt, output = req.input_tokens[rid], req.output_tokens[rid]
        footprint = max(i + o for i, o in zip(req.input_tokens, req.output_tokens, strict=True))
        fixes = []
        for role, need, capacity, pools in (
            (PREFILL, max(req.input_tokens), prefill_cap, self.cluster.prefill_pools),
            ("decode", footprint, decode_cap, self.cluster.decode_pools),
        ):
            if need > capacity:
                own = tuple(pool.gpu_type for pool in pools)
                holding = instances_that_hold(self.cluster, need, own) or ["no known GPU"]
                fixes.append(f"{role} instances holding {need:,} tokens: {', '.join(holding)}")
        raise ValueError(
            f"requests: row {rid} (arriving at {req.arrival_s[rid]:.3f} s): {prompt:,} input + "
            f"{output:,} output tokens exceed the KV capacity of the smallest instance (prefill "
            f"{prefill_cap:,}, decode {decode_cap:,} tokens); {len(too_large):,} requests do. "
            f"A cluster that fits them (--cluster, docs/simulator.md): {'; '.join(fixes)}"
        )

    def schedule(self, at_s: float, handler: Callable, arg: object) -> int:
        """Push an event; return its sequence number (the key that cancels it)."""
        sequence = next(self.sequence)
        heapq.heappush(self.heap, (at_s, sequence, handler, arg))
        return sequence

    def schedule_lifecycle(self, at_s: float, handler: Callable, arg: object) -> None:
        """Push a scaling event (never cancelled: its handler checks it still applies)."""
        heapq.heappush(self.lifecycle_heap, (at_s, next(self.sequence), handler, arg))

    def run(self, until_s: float = math.inf) -> float:
        """Process the events due by ``until_s`` (those not cancelled); return the time of the
        last request event so far: a run ends when its last request does, not its last
        scaling event."""
        heap = self.heap
        lifecycle = self.lifecycle_heap
        cancelled = self.cancelled
        last_s = self.last_event_s
        while True:
            if (
                lifecycle
                and lifecycle[0][0] <= until_s
                and (not heap or lifecycle[0][:2] < heap[0][:2])
            ):
                at_s, _, handler, arg = heapq.heappop(lifecycle)
                self.now = at_s
                handler(arg)
                continue
            if not heap or heap[0][0] > until_s:
                break
            at_s, sequence, handler, arg = heapq.heappop(heap)
            if sequence in cancelled:
                cancelled.remove(sequence)
                continue
            self.now = last_s = at_s
            handler(arg)
        self.last_event_s = last_s
        if until_s < math.inf:
            self.now = until_s
        return last_s

    def on_arrival(self, rid: int) -> None:
        following = rid + 1
        if following < self.table.size:
            arrival = (self.table.arrival_s[following], following, self.on_arrival, following)
            heapq.heappush(self.heap, arrival)
        hashes = self.table.prefix_hashes[rid] if self.cluster.prefix_aware_routing else None
        if hashes:
            instance = longest_cached_prefix(
                self.ready_prefill,
                lambda candidate: candidate.cached_blocks(hashes),
                self.cluster.prefill_token_budget,
            )
        else:
            instance = shortest_queue(self.ready_prefill)
        self.prefill_of[rid] = instance
        instance.enqueue(rid, self.now)
        self.try_prefill(instance)

    def try_prefill(self, instance: PrefillInstance) -> None:
        end_s = instance.start_batch(self.now)
        if end_s is not None:
            self.schedule(end_s, self.on_prefill_done, instance)

    def on_prefill_done(self, instance: PrefillInstance) -> None:
        now = self.now
        req = self.table
        for rid in instance.finish_batch(now):
            if req.output_tokens[rid] == 1:
                req.finish_s[rid] = now
                instance.release_kv(rid, now)
                continue
            target = shortest_queue(self.ready_decode)
            self.decode_of[rid] = target
            req.decode_instance[rid] = target.index
            target.enqueue(rid, now)
            self.admit(target)
        self.try_prefill(instance)
        if self.lifecycle.draining:
            self.retire_if_idle(instance)

    def admit(self, instance: DecodeInstance) -> None:
        for rid in instance.admit(self.now):
            transfer_s = self.table.input_tokens[rid] * self.kv_transfer_s_per_token
            factor = min(self.kv_factor[self.prefill_of[rid].index], self.kv_factor[instance.index])
            self.schedule(self.now + transfer_s / factor, self.on_transfer_done, rid)
        if instance.recompute_pending:  # a readmitted preempted request recomputes here
            if instance.stepping:
                self.cut_stride(instance)
            else:
                self.try_stride(instance)

    def on_transfer_done(self, rid: int) -> None:
        source = self.prefill_of[rid]
        source.release_kv(rid, self.now)
        self.try_prefill(source)
        if self.lifecycle.draining:
            self.retire_if_idle(source)
        target = self.decode_of[rid]
        target.join(rid)
        if target.stepping:
            self.cut_stride(target)
        else:
            self.try_stride(target)

    def try_stride(self, instance: DecodeInstance) -> None:
        end_s = instance.start_stride(self.now)
        if end_s is not None:
            self.stride_event[instance] = self.schedule(end_s, self.on_stride_done, instance)

    def cut_stride(self, instance: DecodeInstance) -> None:
        """A request joins ``instance`` at its next step boundary: end the stride there."""
        end_s = instance.cut_stride(self.now)
        if end_s is not None:
            self.cancelled.add(self.stride_event[instance])
            self.stride_event[instance] = self.schedule(end_s, self.on_stride_done, instance)

    def on_stride_done(self, instance: DecodeInstance) -> None:
        if instance.finish_stride(self.now):
            self.admit(instance)
        self.try_stride(instance)
        if self.lifecycle.draining:
            self.retire_if_idle(instance)

    def pool_key(self, index: int) -> tuple[str, str, int]:
        """(role, GPU type, TP) of an instance: what a scaling action names."""
        info = self.infos[index]
        return info.role, info.gpu_type, info.gpus

    def retire_if_idle(self, instance: PrefillInstance | DecodeInstance) -> None:
        """Let a draining instance that just ran out of work leave (or go warm)."""
        self.lifecycle.retire_if_idle(
            instance, self.now, self.pool_key(instance.index), self.schedule_lifecycle
        )

    def pending_strides(self, before_s: float) -> list[tuple]:
        """Steps of running decode strides that started before ``before_s`` (not yet logged)."""
        steps = (instance.steps_started_before(before_s) for instance in self.decode)
        return [s for s in steps if s is not None]


class _ColocatedSimulation:
    """One run of a colocated cluster: arrivals routed join-shortest-queue to vLLM engines that
    step back to back while they have work."""

    def __init__(self, requests: pl.DataFrame, cluster: ColocatedClusterSpec) -> None:
        self.table = RequestTable(requests)
        self.recorder = Recorder()
        model = MODELS[cluster.model]
        pool, engine = cluster.pool, cluster.engine
        ep = pool.tp * engine.data_parallel_size if engine.enable_expert_parallel else 1
        perf = PerfModel(
            model,
            GPUS[pool.gpu_type],
            pool.tp,
            cluster.efficiency or engine_efficiency(pool.gpu_type),
            ep,
        )
        blocks = engine.num_gpu_blocks or (
            perf.kv_capacity_tokens(engine.gpu_memory_utilization) // engine.block_size
        )
        self.infos = [
            InstanceInfo(
                f"{COLOCATED}-{pool.gpu_type}-{k}",
                COLOCATED,
                pool.gpu_type,
                cluster.gpus_per_instance,
            )
            for k in range(pool.count)
        ]
        self.instances = [
            ColocatedInstance(k, perf, engine, blocks, self.table, self.recorder)
            for k in range(pool.count)
        ]
        capacity = self.instances[0].kv_capacity_tokens
        for rid in range(self.table.size):
            need = self.table.input_tokens[rid] + self.table.output_tokens[rid]
            if need > capacity:
                raise ValueError(
                    f"requests: row {rid}: {need} tokens exceed one engine rank's KV capacity "
                    f"({capacity} tokens)"
                )
        self.heap: list[tuple[float, int, Callable, object]] = []
        self.sequence = itertools.count()
        self.now = 0.0

    def run(self) -> float:
        """Process every event; return the time of the last one."""
        for rid, at_s in enumerate(self.table.arrival_s):
            self.heap.append((at_s, next(self.sequence), self.on_arrival, rid))
        heapq.heapify(self.heap)
        while self.heap:
            self.now, _, handler, arg = heapq.heappop(self.heap)
            handler(arg)
        return self.now

    def on_arrival(self, rid: int) -> None:
        instance = shortest_queue(self.instances)
        self.table.decode_instance[rid] = self.table.prefill_instance[rid] = instance.index
        instance.enqueue(rid, self.now)
        self.try_step(instance)

    def try_step(self, instance: ColocatedInstance) -> None:
        end_s = instance.start_step(self.now)
        if end_s is not None:
            heapq.heappush(self.heap, (end_s, next(self.sequence), self.on_step_done, instance))

    def on_step_done(self, instance: ColocatedInstance) -> None:
        instance.finish_step(self.now)
        self.try_step(instance)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a run.

    The event loop allocates millions of short-lived tuples (events, log rows) that form no
    reference cycles, and each collection pass also walks the growing logs: that is work with
    nothing to find. Reference counting still frees everything; the collector resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def simulate(
    requests: pl.DataFrame,
    cluster: ClusterSpec | ColocatedClusterSpec,
    *,
    service: str,
    start: datetime,
    interval_s: float = 15.0,
) -> SimulationResult:
    """Replay ``requests`` on ``cluster`` and return its telemetry and per-request outcomes.

    Parameters
    ----------
    requests : pl.DataFrame
        Canonical request frame (:data:`simulator.traces.REQUEST_SCHEMA`), sorted by arrival.
    cluster : ClusterSpec or ColocatedClusterSpec
        Instances and serving knobs; fixed for the whole run. A colocated cluster runs
        vLLM-style engines (:mod:`simulator.colocated`) whose telemetry has role
        ``colocated``.
    service : str
        Service name written into the telemetry.
    start : datetime
        Time-zone-aware wall-clock instant of ``arrival_s == 0``.
    interval_s : float
        Telemetry interval; intervals start at ``start`` and run until every request finished.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        If the requests are malformed, ``start`` is naive, or a request exceeds every
        instance's KV capacity.
    """
    if start.tzinfo is None:
        raise ValueError("start must be time-zone aware (UTC)")
    requests = validate_requests(requests)
    with _collector_paused():
        if isinstance(cluster, ColocatedClusterSpec):
            sim = _ColocatedSimulation(requests, cluster)
        else:
            sim = _Simulation(requests, cluster)
        end_s = sim.run()
        instance_ids = [info.instance_id for info in sim.infos]
        bins = Bins.covering(start, interval_s, end_s)
        return SimulationResult(
            instance_samples=instance_samples(sim.recorder, sim.infos, bins, service),
            service_load=service_load(
                requests["arrival_s"].to_numpy(),
                requests["input_tokens"].to_numpy(),
                requests["output_tokens"].to_numpy(),
                bins,
                service,
            ),
            requests=sim.table.to_frame(instance_ids),
        )
