"""A decode instance: admission bounded by KV memory, then continuous batching.

Admission is first-come first-served, in one of two ways:

- *Reservation* (the default): each request reserves its whole KV footprint (prompt + output
  tokens), like TensorRT-LLM's guaranteed-no-evict scheduler: nothing is ever preempted, at the
  price of admitting fewer requests than a paging engine would.
- *Preemption* (vLLM's way, ``preempt=True``): a request is admitted while the KV it holds now
  fits. Running requests' KV grows by a token per step; when the next step would overflow, the
  most recently admitted running request is preempted: its KV is freed and it returns to the
  head of the queue. Readmitted, it recomputes its prompt and the tokens it had generated
  locally, as vLLM does for a preempted request on a decode worker: one prefill pass over
  those tokens (priced by :meth:`simulator.perf_model.PerfModel.prefill`), before the next
  decode step, which samples its next token; then it rejoins the batch.

Admitted requests pull their KV from the prefill instance, then join the running batch at the
next step boundary. Each step emits one token per running request; a request's finishing step
is known on joining, so a heap keyed by step index retires requests in O(log n) without
per-step scans.

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
import sys
from collections import deque

from simulator.perf_model import PerfModel
from simulator.recorder import Recorder
from simulator.request_table import RequestTable
from simulator.stride_clock import StrideClock


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
        KV tokens the instance can hold.
    preempt : bool
        Admit on the KV held now and preempt on overflow (vLLM) instead of reserving each
        request's whole footprint.

    Attributes
    ----------
    preemptions : int
        Requests preempted so far.
    max_stride_steps : int
        Most steps a stride may run (a class attribute). 1 turns event skipping off: one event
        per step, the reference the event-skipping tests' goldens are written with.
    """

    max_stride_steps = sys.maxsize

    def __init__(
        self,
        index: int,
        perf: PerfModel,
        max_num_seqs: int,
        kv_capacity_tokens: int,
        requests: RequestTable,
        recorder: Recorder,
        preempt: bool = False,
    ) -> None:
        self.index = index
        self.perf = perf
        self.max_num_seqs = max_num_seqs
        self.kv_capacity_tokens = kv_capacity_tokens
        self.preempt = preempt
        self.preemptions = 0
        self._requests = requests
        self._recorder = recorder
        self._waiting: deque[int] = deque()  # routed, not yet admitted
        # KV admitted requests hold: their whole footprints, or (preempt) what they hold now.
        self._held_tokens = 0
        # Whole footprints of requests routed here and not finished: the JSQ key (an
        # attribute, not a property, because the router reads it for every instance).
        self.router_load = 0
        # Preemption only: running requests in admission order (the last is the next victim),
        # tokens each preempted request had generated after its first, readmitted requests
        # awaiting their recompute pass, and those in the running one.
        self._running_order: list[int] = []
        self._generated: dict[int, int] = {}
        self._recompute: list[int] = []
        self._recomputing: list[int] = []
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

    @property
    def recompute_pending(self) -> bool:
        """A readmitted request waits for its recompute pass (at the next step boundary)."""
        return bool(self._recompute)

    def reservation_tokens(self, rid: int) -> int:
        """KV a request reserves for its whole life: prompt plus every output token."""
        return self._requests.input_tokens[rid] + self._requests.output_tokens[rid]

    def enqueue(self, rid: int, now: float) -> None:
        """Accept a request whose prefill finished; it waits for admission."""
        self._waiting.append(rid)
        self.router_load += self.reservation_tokens(rid)
        self._set_not_running(self._not_running + 1, now)

    def admit(self, now: float) -> list[int]:
        """Admit waiting requests in order while KV and sequence slots allow; return the ids
        of those whose KV the engine must transfer (readmitted preempted requests recompute
        theirs here instead)."""
        transfers = []
        held = self._held_tokens
        while self._waiting and self._admitted < self.max_num_seqs:
            rid = self._waiting[0]
            if not self.preempt:
                need = self.reservation_tokens(rid)
            elif rid in self._generated:  # its recompute, and the token that samples
                need = self._requests.input_tokens[rid] + self._generated[rid] + 1
            else:
                need = self._requests.input_tokens[rid]
            if held + need > self.kv_capacity_tokens:
                break
            self._waiting.popleft()
            held += need
            self._admitted += 1
            if rid in self._generated:
                self._recompute.append(rid)
            else:
                transfers.append(rid)
        if held != self._held_tokens:
            self._held_tokens = held
            self._record_kv(now)
        return transfers

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
            if self.preempt:
                self._running_order.extend(self._joining)
            self._running += len(self._joining)
            self._set_not_running(self._not_running - len(self._joining), now)
            self._joining.clear()
        if self._recompute:
            return self._start_recompute(now)
        if self.preempt:
            # The next step adds a token per running request: make room, newest first.
            while self._running and self._held_tokens + self._running > self.kv_capacity_tokens:
                self._preempt_newest(now)
        if self._running == 0:
            return None
        steps = min(self._finish_heap[0][0] - self._steps_done, self.max_stride_steps)
        if self.preempt:
            # Stop where the KV runs out (the next stride preempts), and hold what the steps
            # will write from now on, so that admissions meanwhile cannot take it.
            steps = min(steps, (self.kv_capacity_tokens - self._held_tokens) // self._running)
            self._held_tokens += self._running * steps
            self._record_kv(now)
        clock = self.perf.stride_clock(self._running, self._resident_kv_tokens)
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
        if self._recomputing:
            return None  # a recompute pass runs to its end
        start_s, clock = self._stride_start_s, self._stride_clock
        steps = clock.first_bound(start_s, now, 1, self._stride_steps)
        if steps == self._stride_steps:
            return None
        if self.preempt:  # the steps cut off will not write their KV
            self._held_tokens -= self._running * (self._stride_steps - steps)
            self._record_kv(now)
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
        if not self.stepping or self._recomputing:
            return None  # a recompute pass is logged when it starts
        start_s = self._stride_start_s
        steps = self._stride_clock.first_bound(start_s, at_s, 0, self._stride_steps)
        return self._stride_log(steps)

    def finish_stride(self, now: float) -> list[int]:
        """End the running stride at ``now``: log its steps, every running request gained a
        token per step; return the requests that are now complete."""
        self.stepping = False
        if self._recomputing:
            return self._finish_recompute(now)
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
                kv_tokens = req.input_tokens[rid] + req.output_tokens[rid] - 1
                self._resident_kv_tokens -= kv_tokens
                self._release(rid, kv_tokens, now)
                if self.preempt:
                    self._running_order.remove(rid)
            self._running -= len(finished)
            self._record_kv(now)
        return finished

    def _release(self, rid: int, kv_tokens: int, now: float) -> None:
        """``rid`` is complete; it held ``kv_tokens`` of KV."""
        reservation = self.reservation_tokens(rid)
        self._held_tokens -= kv_tokens if self.preempt else reservation
        self.router_load -= reservation
        self._admitted -= 1
        self._requests.finish_s[rid] = now

    def _preempt_newest(self, now: float) -> None:
        """Preempt the most recently admitted running request: free its KV and queue it
        first, remembering how many tokens it had generated."""
        rid = self._running_order.pop()
        heap = self._finish_heap
        at = next(i for i, entry in enumerate(heap) if entry[1] == rid)
        remaining = heap[at][0] - self._steps_done
        heap[at] = heap[-1]
        heap.pop()
        heapq.heapify(heap)
        req = self._requests
        generated = req.output_tokens[rid] - 1 - remaining  # after the first token
        kv_tokens = req.input_tokens[rid] + generated
        self._resident_kv_tokens -= kv_tokens
        self._held_tokens -= kv_tokens
        self._running -= 1
        self._admitted -= 1
        self._generated[rid] = generated
        self._waiting.appendleft(rid)
        self.preemptions += 1
        self._recorder.preempted(self.index, now)
        self._set_not_running(self._not_running + 1, now)
        self._record_kv(now)

    def _start_recompute(self, now: float) -> float:
        """Run one prefill pass over the readmitted requests' prompts and generated tokens;
        it samples each one's next token. Logged now, as a prefill batch is."""
        batch, self._recompute = self._recompute, []
        req = self._requests
        tokens = [req.input_tokens[rid] + self._generated[rid] for rid in batch]
        cost = self.perf.prefill(tokens, [0] * len(batch))
        self._recorder.forward_pass(
            self.index, now, cost.duration_s, cost.sm_active_fraction, len(batch), len(batch)
        )
        self._recomputing = batch
        self.stepping = True
        return now + cost.duration_s

    def _finish_recompute(self, now: float) -> list[int]:
        """The recompute pass ended: each request got a token; those that still have tokens to
        generate rejoin the batch, the others are complete (returned)."""
        batch, self._recomputing = self._recomputing, []
        req = self._requests
        finished = []
        for rid in batch:
            generated = self._generated.pop(rid) + 1
            kv_tokens = req.input_tokens[rid] + generated
            remaining = req.output_tokens[rid] - 1 - generated
            if remaining == 0:
                self._release(rid, kv_tokens, now)
                finished.append(rid)
                continue
            self._resident_kv_tokens += kv_tokens
            heapq.heappush(self._finish_heap, (self._steps_done + remaining, rid))
            self._running_order.append(rid)
            self._running += 1
        self._set_not_running(self._not_running - len(batch), now)
        self._record_kv(now)
        return finished

    def _stride_log(self, steps: int) -> tuple:
        """The first ``steps`` steps of the running stride, as
        :meth:`simulator.recorder.Recorder.decode_steps` arguments."""
        return (
            self.index,
            self.perf,
            self._stride_start_s,
            self._running,
            self._stride_kv_tokens,
            steps,
        )

    def _set_not_running(self, depth: int, now: float) -> None:
        self._not_running = depth
        self._recorder.queue_changed(self.index, now, depth)

    def _record_kv(self, now: float) -> None:
        self._recorder.kv_changed(self.index, now, self._held_tokens / self.kv_capacity_tokens)
