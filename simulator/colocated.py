"""A colocated vLLM-style engine: prefill and decode share the GPUs, one scheduler step at a time.

Each step follows vLLM's (V1, 0.19) scheduler:

1. Running requests come first, in the order they started. Each asks for the tokens it still
   lacks in KV: one for a decoding request, the rest of its prompt (capped by what is left of
   the ``max_num_batched_tokens`` budget) for one still prefilling: chunked prefill.
2. Their KV grows in paged blocks (:class:`simulator.kv_blocks.BlockPool`). When a request needs
   a block and none is free, the most recently started running request is preempted: its
   blocks go back to the free queue and it returns to the head of the waiting queue, to
   recompute later what the prefix cache no longer holds of its prompt and generated tokens.
3. If nothing was preempted in this step, waiting requests start in arrival order while fewer
   than ``max_num_seqs`` run and budget is left. A request first takes its still-cached leading
   blocks (prefix cache hits), then needs blocks for its first chunk and, with
   ``scheduler_reserve_full_isl``, for its whole sequence so far.

The step is one forward pass over every scheduled token, priced by the kernel-group roofline
(:meth:`simulator.perf_model.PerfModel.step_work`): the weights are read once for the decode
tokens and the prefill chunks together. When a request's scheduled tokens reach everything it
knows, the pass samples its next token: its first (TTFT), a decode token, or its last.

The engine loop takes new requests in only between steps (a request arriving mid-step waits in
an inbox; the pick-up time is vLLM's ``queued_ts``). With ``async_scheduling`` the step after
the running one was already planned when the running one started, so a request picked up while
the engine is busy can join the step after that one at the earliest.

An instance may hold several data-parallel ranks (vLLM ``data_parallel_size``), each with its
own scheduler and KV. With a MoE model they step in lockstep, because every rank's experts serve
every rank's tokens; the step lasts as long as the slowest rank.
"""

from __future__ import annotations

from collections import deque

from simulator.cluster import EngineConfig
from simulator.kv_blocks import BlockPool
from simulator.perf_model import PerfModel, Work
from simulator.recorder import Recorder
from simulator.request_table import RequestTable


class _Rank:
    """One data-parallel rank's scheduler state: queues, per-request progress, KV blocks."""

    def __init__(self, config: EngineConfig, num_blocks: int) -> None:
        self.inbox: list[int] = []  # arrived during the running step, not picked up yet
        self.waiting: deque[int] = deque()
        self.running: list[int] = []
        self.pool = BlockPool(num_blocks, config.block_size, config.enable_prefix_caching)
        self.computed: dict[int, int] = {}  # tokens of the request with KV
        self.first_step: dict[int, int] = {}  # earliest step a waiting request may join
        self.scheduled: list[tuple[int, int]] = []  # (request, tokens) of the current step
        self.hit_tokens = 0  # prompt tokens of this step's admissions served from the cache


class ColocatedInstance:
    """A vLLM engine (one or more data-parallel ranks); the engine module drives its steps.

    Parameters
    ----------
    index : int
        Global instance index used in logs.
    perf : PerfModel
        Latency model of one rank (model, GPU, TP, EP).
    config : EngineConfig
        Scheduler settings.
    blocks_per_rank : int
        KV blocks each rank reports (``num_gpu_blocks``, vLLM's null block included).

    Attributes
    ----------
    queued_s : dict of int to float
        When the engine loop picked each request up (vLLM's ``queued_ts``).
    preemptions : int
        Requests preempted so far.
    prefix_hit_tokens : int
        Tokens re-admitted requests found still cached instead of recomputing them.
    """

    def __init__(
        self,
        index: int,
        perf: PerfModel,
        config: EngineConfig,
        blocks_per_rank: int,
        requests: RequestTable,
        recorder: Recorder,
    ) -> None:
        self.index = index
        self.perf = perf
        self.config = config
        self.ranks = [_Rank(config, blocks_per_rank) for _ in range(config.data_parallel_size)]
        self.blocks_per_rank = self.ranks[0].pool.num_blocks
        self._requests = requests
        self._recorder = recorder
        self._generated: dict[int, int] = {}
        self._steps = 0  # steps started so far: the index of the next one
        self.queued_s: dict[int, float] = {}
        self.preemptions = 0
        self.prefix_hit_tokens = 0
        self.stepping = False

    @property
    def kv_capacity_tokens(self) -> int:
        """KV tokens one rank can hold: the largest request this instance can ever run."""
        return self.blocks_per_rank * self.config.block_size

    @property
    def router_load(self) -> int:
        """Requests waiting or running on this instance: the join-shortest-queue key."""
        return sum(len(r.inbox) + len(r.waiting) + len(r.running) for r in self.ranks)

    def enqueue(self, rid: int, now: float) -> None:
        """Route a request to the rank of least ``4 * waiting + running`` (vLLM's data-parallel
        load balancer); an idle engine picks it up at once, a busy one after its running step."""
        rank = min(self.ranks, key=lambda r: 4 * (len(r.inbox) + len(r.waiting)) + len(r.running))
        self._generated[rid] = 0
        if self.stepping:
            rank.inbox.append(rid)
            return
        self._pick_up(rank, rid, now, self._steps)
        self._record_gauges(now)

    def start_step(self, now: float) -> float | None:
        """Schedule every rank and start the pass if idle and any token is scheduled; return its
        end time."""
        if self.stepping:
            return None
        for rank in self.ranks:
            self._schedule(rank)
        if not any(rank.scheduled for rank in self.ranks):
            return None
        self._steps += 1
        # Under EP an idle rank still runs its experts for the others' tokens (a dummy batch).
        group_tokens = None
        if self.perf.ep > 1:
            group_tokens = sum(t for rank in self.ranks for _, t in rank.scheduled)
        works = [
            self._work(rank, group_tokens)
            for rank in self.ranks
            if rank.scheduled or group_tokens is not None
        ]
        costs = [self.perf.cost(w) for w in works]
        slowest = max(costs, key=lambda c: c.duration_s)
        batch = sum(len(rank.scheduled) for rank in self.ranks)
        decode = sum(
            1
            for rank in self.ranks
            for rid, tokens in rank.scheduled
            if self._samples_decode_token(rank, rid, tokens)
        )
        self._recorder.forward_pass(
            self.index, now, slowest.duration_s, slowest.sm_active_fraction, batch, decode
        )
        self._record_gauges(now)
        self.stepping = True
        return now + slowest.duration_s

    def finish_step(self, now: float) -> list[int]:
        """End the pass: advance every scheduled request, sample tokens, pick up the requests
        that arrived meanwhile; return finished ids."""
        self.stepping = False
        req = self._requests
        finished = []
        prompt_tokens = hit_tokens = 0
        for rank in self.ranks:
            hit_tokens += rank.hit_tokens
            rank.hit_tokens = 0
            for rid, tokens in rank.scheduled:
                prompt_tokens += max(
                    0, min(rank.computed[rid] + tokens, req.input_tokens[rid]) - rank.computed[rid]
                )
                rank.computed[rid] += tokens
                if rank.computed[rid] < self._known_tokens(rid):
                    continue  # a prompt chunk: no token sampled yet
                self._generated[rid] += 1
                if self._generated[rid] == 1:
                    req.first_token_s[rid] = now
                    self._recorder.first_token(self.index, now, now - req.arrival_s[rid])
                if self._generated[rid] == req.output_tokens[rid]:
                    finished.append(rid)
                    req.finish_s[rid] = now
                    rank.pool.free(rid)
                    del rank.computed[rid]
                    del self._generated[rid]
            rank.scheduled = []
            if finished:
                done = set(finished)
                rank.running = [rid for rid in rank.running if rid not in done]
        if prompt_tokens or hit_tokens:
            self._recorder.prefill_done(self.index, now, prompt_tokens + hit_tokens, prompt_tokens)
        # With async scheduling the next step was planned while this one ran (if anything was
        # left to run): requests picked up now can join the one after it.
        busy = any(rank.running or rank.waiting for rank in self.ranks)
        first_step = self._steps + (1 if self.config.async_scheduling and busy else 0)
        for rank in self.ranks:
            for rid in rank.inbox:
                self._pick_up(rank, rid, now, first_step)
            rank.inbox = []
        self._record_gauges(now)
        return finished

    def _pick_up(self, rank: _Rank, rid: int, now: float, first_step: int) -> None:
        """The engine loop takes ``rid`` into ``rank``'s waiting queue (vLLM's ``queued_ts``)."""
        rank.waiting.append(rid)
        rank.computed[rid] = 0
        rank.first_step[rid] = first_step
        self.queued_s[rid] = now

    def _known_tokens(self, rid: int) -> int:
        """Prompt plus generated tokens: all must be in KV before the next token is sampled."""
        return self._requests.input_tokens[rid] + self._generated[rid]

    def _samples_decode_token(self, rank: _Rank, rid: int, tokens: int) -> bool:
        """Whether scheduling ``tokens`` for ``rid`` completes it and samples a non-first token."""
        return self._generated[rid] >= 1 and rank.computed[rid] + tokens == self._known_tokens(rid)

    def _schedule(self, rank: _Rank) -> None:
        """Fill ``rank.scheduled`` for the next step (running first, then waiting)."""
        budget = self.config.max_num_batched_tokens
        pool = rank.pool
        scheduled = []
        preempted = False
        i = 0
        while i < len(rank.running) and budget > 0:
            rid = rank.running[i]
            tokens = min(self._known_tokens(rid) - rank.computed[rid], budget)
            if pool.allocate(rid, rank.computed[rid] + tokens):
                pool.cache_full_blocks(rid, rank.computed[rid] + tokens)
                scheduled.append((rid, tokens))
                budget -= tokens
                i += 1
                continue
            victim = rank.running.pop()
            self._preempt(rank, victim)
            preempted = True
            if victim == rid:
                break
        while (
            not preempted
            and rank.waiting
            and len(rank.running) < self.config.max_num_seqs
            and budget > 0
            and rank.first_step[rank.waiting[0]] <= self._steps
        ):
            rid = rank.waiting[0]
            tokens = self._admit(rank, rid, budget)
            if tokens is None:
                break
            rank.waiting.popleft()
            rank.running.append(rid)
            scheduled.append((rid, tokens))
            budget -= tokens
        rank.scheduled = scheduled

    def _admit(self, rank: _Rank, rid: int, budget: int) -> int | None:
        """Start ``rid`` from its cached prefix if its blocks fit; return its first chunk's
        tokens, or None if it must keep waiting."""
        pool = rank.pool
        known = self._known_tokens(rid)
        hits = pool.cached_blocks(rid, known)
        computed = hits * pool.block_size
        tokens = min(known - computed, budget)
        # Cached hits sit in the free queue, so they count against the free blocks too.
        need = pool.blocks_for(known if self.config.scheduler_reserve_full_isl else 0)
        if max(need, pool.blocks_for(computed + tokens)) > pool.num_free:
            return None
        pool.take_cached(rid, hits)
        pool.allocate(rid, computed + tokens)
        pool.cache_full_blocks(rid, computed + tokens)
        rank.computed[rid] = computed
        prompt_hits = min(computed, self._requests.input_tokens[rid])
        rank.hit_tokens += prompt_hits
        self._requests.cached_tokens[rid] += prompt_hits
        self.prefix_hit_tokens += computed
        return tokens

    def _preempt(self, rank: _Rank, rid: int) -> None:
        """Free ``rid``'s KV (its full blocks stay cached) and put it back at the head of the
        queue to resume later."""
        rank.pool.free(rid)
        rank.computed[rid] = 0
        rank.first_step[rid] = 0
        rank.waiting.appendleft(rid)
        self.preemptions += 1

    def _work(self, rank: _Rank, group_tokens: int | None = None) -> Work:
        """The rank's pass: prefill chunks over their context, plus one token per decoder."""
        prefill_new, prefill_context = [], []
        decode_batch = decode_kv = 0
        for rid, tokens in rank.scheduled:
            if self._samples_decode_token(rank, rid, tokens) and tokens == 1:
                decode_batch += 1
                decode_kv += rank.computed[rid] + 1
            else:
                prefill_new.append(tokens)
                prefill_context.append(rank.computed[rid])
        return self.perf.step_work(
            prefill_new, prefill_context, decode_batch, decode_kv, moe_tokens=group_tokens
        )

    def _record_gauges(self, now: float) -> None:
        waiting = sum(len(r.waiting) for r in self.ranks)
        self._recorder.queue_changed(self.index, now, waiting)
        used = sum(self.blocks_per_rank - r.pool.num_free for r in self.ranks)
        self._recorder.kv_changed(self.index, now, used / (self.blocks_per_rank * len(self.ranks)))
