"""A prefill instance: FIFO queue, whole-request batches under a token budget, prefix cache.

A batch takes requests from the head of the queue while their cache-missed tokens fit the
budget (the first always goes, so an over-long prompt runs alone: no chunked prefill yet) and
their KV fits what is left of the instance's KV memory. The batch's KV stays on the instance
until its transfer to a decode instance completes, so a decode pool that cannot admit pushes
back on prefill. The batch emits each request's first token when it ends.
"""

from __future__ import annotations

from collections import deque

from simulator.perf_model import PerfModel
from simulator.prefix_cache import PrefixCache
from simulator.recorder import Recorder
from simulator.request_table import RequestTable


class PrefillInstance:
    """One prefill instance's state; the engine drives it and schedules its events.

    Parameters
    ----------
    index : int
        Global instance index used in logs.
    perf : PerfModel
        Latency model of this instance's (model, GPU, TP).
    token_budget : int
        Most cache-missed tokens per batch.
    kv_capacity_tokens : int
        KV tokens the instance can hold (batch being computed plus KV awaiting transfer).
    cache : PrefixCache or None
        None disables prefix caching (traces without hashes).
    block_tokens : int
        Tokens per prefix-hash block.
    """

    def __init__(
        self,
        index: int,
        perf: PerfModel,
        token_budget: int,
        kv_capacity_tokens: int,
        cache: PrefixCache | None,
        block_tokens: int,
        requests: RequestTable,
        recorder: Recorder,
    ) -> None:
        self.index = index
        self.perf = perf
        self.token_budget = token_budget
        self.kv_capacity_tokens = kv_capacity_tokens
        self.cache = cache
        self.block_tokens = block_tokens
        self._requests = requests
        self._recorder = recorder
        self._queue: deque[int] = deque()
        self._batch: list[int] = []
        # Prompt tokens queued or in the running batch: the JSQ key (an attribute, not a
        # property, because the router reads it for every instance on every arrival).
        self.router_load = 0
        self._held_kv_tokens = 0  # KV of the running batch and of requests awaiting transfer
        self.busy = False

    @property
    def idle(self) -> bool:
        """Nothing queued, computing or awaiting transfer: a draining instance may leave."""
        return not self.busy and not self._queue and self._held_kv_tokens == 0

    def enqueue(self, rid: int, now: float) -> None:
        """Accept a routed request at the tail of the queue."""
        self._queue.append(rid)
        self.router_load += self._requests.input_tokens[rid]
        self._recorder.queue_changed(self.index, now, len(self._queue))

    def start_batch(self, now: float) -> float | None:
        """Start the next batch if idle and the queue head fits; return its end time."""
        if self.busy or not self._queue:
            return None
        req = self._requests
        batch, new, cached = [], [], []
        kv_tokens = new_tokens = 0
        while self._queue:
            rid = self._queue[0]
            prompt = req.input_tokens[rid]
            if self._held_kv_tokens + kv_tokens + prompt > self.kv_capacity_tokens:
                break
            hit = self._cached_tokens(rid)
            if batch and new_tokens + prompt - hit > self.token_budget:
                break
            self._queue.popleft()
            batch.append(rid)
            new.append(prompt - hit)
            cached.append(hit)
            kv_tokens += prompt
            new_tokens += prompt - hit
        if not batch:
            return None
        cost = self.perf.prefill(new, cached)
        for rid, hit in zip(batch, cached, strict=True):
            req.cached_tokens[rid] = hit
            req.prefill_instance[rid] = self.index
            req.prefill_start_s[rid] = now
        self._batch = batch
        self._held_kv_tokens += kv_tokens
        self.busy = True
        self._recorder.forward_pass(
            self.index, now, cost.duration_s, cost.sm_active_fraction, len(batch), 0
        )
        self._recorder.queue_changed(self.index, now, len(self._queue))
        self._record_kv(now)
        return now + cost.duration_s

    def finish_batch(self, now: float) -> list[int]:
        """End the running batch: its requests get their first token; return their ids."""
        req = self._requests
        batch, self._batch = self._batch, []
        self.busy = False
        total = missed = 0
        for rid in batch:
            prompt = req.input_tokens[rid]
            total += prompt
            missed += prompt - req.cached_tokens[rid]
            self.router_load -= prompt
            req.first_token_s[rid] = now
            self._recorder.first_token(self.index, now, now - req.arrival_s[rid])
            if self.cache is not None:
                self.cache.insert(req.prefix_hashes[rid])
        self._recorder.prefill_done(self.index, now, total, missed)
        return batch

    def release_kv(self, rid: int, now: float) -> None:
        """The request's KV left this instance (transferred, or not needed)."""
        self._held_kv_tokens -= self._requests.input_tokens[rid]
        self._record_kv(now)

    def cached_blocks(self, hashes: list[int]) -> int:
        """Leading blocks of ``hashes`` this instance's prefix cache holds now."""
        return self.cache.hit_blocks(hashes) if self.cache is not None else 0

    def _cached_tokens(self, rid: int) -> int:
        """Prompt tokens found in the prefix cache; at least one token is always computed,
        because the last prompt position must run to produce the first token's logits."""
        if self.cache is None:
            return 0
        hashes = self._requests.prefix_hashes[rid]
        if not hashes:
            return 0
        hit = self.cache.hit_blocks(hashes) * self.block_tokens
        return min(hit, self._requests.input_tokens[rid] - 1)

    def _record_kv(self, now: float) -> None:
        self._recorder.kv_changed(self.index, now, self._held_kv_tokens / self.kv_capacity_tokens)
