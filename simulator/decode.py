"""A decode instance: admission bounded by KV memory, then continuous batching.

Admission is first-come first-served and reserves each request's whole KV footprint
(prompt + output tokens), like TensorRT-LLM's guaranteed-no-evict scheduler: nothing is ever
preempted, at the price of admitting fewer requests than a paging engine would. Admitted
requests pull their KV from the prefill instance, then join the running batch at the next step
boundary. Each step emits one token per running request; a request's finishing step is known on
joining, so a heap keyed by step index retires requests in O(log n) without per-step scans.

The instance steps back to back for as long as any request is resident, however few: this is
why decode GPU utilisation stays high at light load while prefill's falls with it.

Event skipping: while the batch does not change, the steps are deterministic (same batch, KV
growing by one token per request per step), so the instance runs a *stride* of steps, up to the
next finish, as one event. Its step boundaries come in closed form
(:meth:`simulator.perf_model.PerfModel.stride_clock`, O(1) per stride); the steps themselves are
logged unpriced and priced all at once, per step, when telemetry is computed
(:meth:`simulator.recorder.Recorder.passes`). A request whose KV arrives mid-stride must still
join at the next step boundary, so the engine then cuts the stride there
(:meth:`DecodeInstance.cut_stride`). Only the steps that ran are logged, each as its own forward
pass, so results and telemetry are those of stepping one event at a time, to rounding.
"""

from __future__ import annotations

import heapq
from collections import deque

from simulator.perf_model import PerfModel, StrideClock
from simulator.recorder import Recorder
from simulator.request_table import RequestTable


class DecodeInstance:
    """One decode instance's state; the engine drives it and schedules its events.

    Parameters
    ----------
    index : int
        Global instance index used in logs.
    perf : PerfModel
        Latency model of this instance's (model, GPU, TP).
    max_num_seqs : int
        Most requests admitted at once.
    kv_capacity_tokens : int
        KV tokens the instance can reserve.
    """

    def __init__(
        self,
        index: int,
        perf: PerfModel,
        max_num_seqs: int,
        kv_capacity_tokens: int,
        requests: RequestTable,
        recorder: Recorder,
    ) -> None:
        self.index = index
        self.perf = perf
        self.max_num_seqs = max_num_seqs
        self.kv_capacity_tokens = kv_capacity_tokens
        self._requests = requests
        self._recorder = recorder
        self._waiting: deque[int] = deque()  # routed, not yet admitted
        self._waiting_tokens = 0  # KV those requests will reserve
        self._reserved_tokens = 0  # KV reserved by admitted requests
        # KV reserved here plus that of requests waiting for admission: the JSQ key (an
        # attribute, not a property, because the router reads it for every instance).
        self.router_load = 0
        self._admitted = 0  # admitted and not finished: transferring, joining or running
        self._joining: list[int] = []  # KV arrived, waiting for the next step boundary
        self._not_running = 0  # routed but not yet running: the queue gauge
        self._running = 0
        self._resident_kv_tokens = 0  # KV the next step reads
        self._finish_heap: list[tuple[int, int]] = []  # (finishing step index, request id)
        self._steps_done = 0
        # The running stride: its start, its clock (when each step ends), the KV its first step
        # reads, and how many of its steps will run.
        self._stride_start_s = 0.0
        self._stride_clock: StrideClock | None = None
        self._stride_kv_tokens = 0
        self._stride_steps = 0
        self.stepping = False

    @property
    def idle(self) -> bool:
        """Nothing waiting, transferring or running: a draining instance may leave."""
        return not self.stepping and not self._waiting and self._admitted == 0

    def reservation_tokens(self, rid: int) -> int:
        """KV a request reserves for its whole life: prompt plus every output token."""
        return self._requests.input_tokens[rid] + self._requests.output_tokens[rid]

    def enqueue(self, rid: int, now: float) -> None:
        """Accept a request whose prefill finished; it waits for admission."""
        self._waiting.append(rid)
        need = self.reservation_tokens(rid)
        self._waiting_tokens += need
        self.router_load += need
        self._set_not_running(self._not_running + 1, now)

    def admit(self, now: float) -> list[int]:
        """Admit waiting requests in order while KV and sequence slots allow; return their ids.

        The engine starts their KV transfers.
        """
        admitted = []
        while self._waiting and self._admitted < self.max_num_seqs:
            need = self.reservation_tokens(self._waiting[0])
            if self._reserved_tokens + need > self.kv_capacity_tokens:
                break
            rid = self._waiting.popleft()
            self._waiting_tokens -= need
            self._reserved_tokens += need
            self._admitted += 1
            admitted.append(rid)
        if admitted:
            self._record_kv(now)
        return admitted

    def join(self, rid: int) -> None:
        """The request's KV has arrived; it runs from the next step on."""
        self._joining.append(rid)

    def start_stride(self, now: float) -> float | None:
        """Start a stride if idle and any request is resident; return its end time.

        Requests waiting at this boundary join first. The stride runs until the earliest
        finishing step, since only a finish (or a join, which cuts the stride) changes the batch.
        """
        if self.stepping:
            return None
        if self._joining:
            req = self._requests
            for rid in self._joining:
                req.decode_start_s[rid] = now
                self._resident_kv_tokens += req.input_tokens[rid]
                # The first token came from prefill; decode generates the rest.
                finish_step = self._steps_done + req.output_tokens[rid] - 1
                heapq.heappush(self._finish_heap, (finish_step, rid))
            self._running += len(self._joining)
            self._set_not_running(self._not_running - len(self._joining), now)
            self._joining.clear()
        if self._running == 0:
            return None
        steps = self._finish_heap[0][0] - self._steps_done
        clock = self.perf.stride_clock(self._running, self._resident_kv_tokens, steps)
        self._stride_start_s = now
        self._stride_clock = clock
        self._stride_kv_tokens = self._resident_kv_tokens
        self._stride_steps = steps
        self.stepping = True
        return now + clock.elapsed_s(steps)

    def cut_stride(self, now: float) -> float | None:
        """End the running stride at its first step boundary at or after ``now``, where a
        request that just joined can enter the batch.

        Returns
        -------
        float or None
            The new end time, or None when the stride already ends at that boundary (the
            engine's pending event stays valid).
        """
        start_s, clock = self._stride_start_s, self._stride_clock
        steps = clock.first_bound(start_s, now, 1, self._stride_steps)
        if steps == self._stride_steps:
            return None
        self._stride_steps = steps
        return start_s + clock.elapsed_s(steps)

    def steps_started_before(self, at_s: float) -> tuple | None:
        """The running stride's steps that started before ``at_s``, in the shape of
        :meth:`simulator.recorder.Recorder.decode_steps`'s arguments, or None when not
        stepping.

        A stride is logged only when it ends, so telemetry of an interval that ends mid-stride
        needs these steps; they run whatever happens later, because a cut keeps every step
        started before it (:meth:`cut_stride`).
        """
        if not self.stepping:
            return None
        start_s = self._stride_start_s
        steps = self._stride_clock.first_bound(start_s, at_s, 0, self._stride_steps)
        return self._stride_log(steps)

    def finish_stride(self, now: float) -> list[int]:
        """End the running stride at ``now``: log its steps, every running request gained a
        token per step; return the requests that are now complete."""
        self.stepping = False
        steps = self._stride_steps
        self._recorder.decode_steps(*self._stride_log(steps))
        self._steps_done += steps
        self._resident_kv_tokens += self._running * steps
        heap = self._finish_heap
        finished = []
        while heap and heap[0][0] == self._steps_done:
            finished.append(heapq.heappop(heap)[1])
        if finished:
            req = self._requests
            for rid in finished:
                generated = req.output_tokens[rid] - 1
                self._resident_kv_tokens -= req.input_tokens[rid] + generated
                need = self.reservation_tokens(rid)
                self._reserved_tokens -= need
                self.router_load -= need
                req.finish_s[rid] = now
            self._running -= len(finished)
            self._admitted -= len(finished)
            self._record_kv(now)
        return finished

    def _stride_log(self, steps: int) -> tuple:
        """The first ``steps`` steps of the running stride, as
        :meth:`simulator.recorder.Recorder.decode_steps` arguments."""
        return (
            self.index,
            self.perf,
            self._stride_start_s,
            self._stride_clock,
            self._running,
            self._stride_kv_tokens,
            steps,
        )

    def _set_not_running(self, depth: int, now: float) -> None:
        self._not_running = depth
        self._recorder.queue_changed(self.index, now, depth)

    def _record_kv(self, now: float) -> None:
        self._recorder.kv_changed(self.index, now, self._reserved_tokens / self.kv_capacity_tokens)
