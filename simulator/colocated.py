"""A colocated vLLM-style engine: prefill and decode share the GPUs, one scheduler step at a time.

Each step follows vLLM's (V1) scheduler:

1. Running requests come first, in the order they started. Each asks for the tokens it still
   lacks in KV: one for a decoding request, the rest of its prompt (capped by what is left of
   the ``max_num_batched_tokens`` budget) for one still prefilling: chunked prefill.
2. Their KV grows in paged blocks of ``block_size`` tokens. When a request needs a block and
   none is free, the most recently started running request is preempted: its blocks are freed
   and it returns to the head of the waiting queue, to recompute its prompt and the tokens it
   generated (recompute preemption; prefix-cache reuse of the freed blocks is not modelled).
3. If nothing was preempted, waiting requests start in arrival order while fewer than
   ``max_num_seqs`` run, budget is left and their first chunk's blocks fit.

The step is one forward pass over every scheduled token, priced by the roofline
(:meth:`simulator.perf_model.PerfModel.step_work`): the weights are read once for the decode
tokens and the prefill chunks together. When a request's scheduled tokens reach everything it
knows, the pass samples its next token: its first (TTFT), a decode token, or its last.

An instance may hold several data-parallel ranks (vLLM ``data_parallel_size``), each with its
own scheduler and KV. With a MoE model they step in lockstep, because every rank's experts serve
every rank's tokens; the step lasts as long as the slowest rank.
"""

from __future__ import annotations

from collections import deque

from simulator.cluster import EngineConfig
from simulator.perf_model import PerfModel, Work
from simulator.recorder import Recorder
from simulator.request_table import RequestTable


class _Rank:
    """One data-parallel rank's scheduler state: queues, per-request progress, free KV blocks."""

    def __init__(self, num_blocks: int) -> None:
        self.waiting: deque[int] = deque()
        self.running: list[int] = []
        self.free_blocks = num_blocks
        self.computed: dict[int, int] = {}  # tokens of the request with KV
        self.blocks: dict[int, int] = {}  # blocks the request holds
        self.scheduled: list[tuple[int, int]] = []  # (request, tokens) of the current step


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
        KV blocks each rank owns.
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
        self.blocks_per_rank = blocks_per_rank
        self.ranks = [_Rank(blocks_per_rank) for _ in range(config.data_parallel_size)]
        self._requests = requests
        self._recorder = recorder
        self._generated: dict[int, int] = {}
        self.preemptions = 0
        self.stepping = False

    @property
    def kv_capacity_tokens(self) -> int:
        """KV tokens one rank can hold: the largest request this instance can ever run."""
        return self.blocks_per_rank * self.config.block_size

    @property
    def router_load(self) -> int:
        """Requests waiting or running on this instance: the join-shortest-queue key."""
        return sum(len(r.waiting) + len(r.running) for r in self.ranks)

    def enqueue(self, rid: int, now: float) -> None:
        """Accept a request on the rank with the fewest waiting, then running, requests."""
        rank = min(self.ranks, key=lambda r: (len(r.waiting), len(r.running)))
        rank.waiting.append(rid)
        rank.computed[rid] = 0
        rank.blocks[rid] = 0
        self._generated[rid] = 0
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
        """End the pass: advance every scheduled request, sample tokens; return finished ids."""
        self.stepping = False
        req = self._requests
        finished = []
        prompt_tokens = 0
        for rank in self.ranks:
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
                    rank.free_blocks += rank.blocks.pop(rid)
                    del rank.computed[rid]
                    del self._generated[rid]
            rank.scheduled = []
            if finished:
                done = set(finished)
                rank.running = [rid for rid in rank.running if rid not in done]
        if prompt_tokens:
            self._recorder.prefill_done(self.index, now, prompt_tokens, prompt_tokens)
        self._record_gauges(now)
        return finished

    def _known_tokens(self, rid: int) -> int:
        """Prompt plus generated tokens: all must be in KV before the next token is sampled."""
        return self._requests.input_tokens[rid] + self._generated[rid]

    def _samples_decode_token(self, rank: _Rank, rid: int, tokens: int) -> bool:
        """Whether scheduling ``tokens`` for ``rid`` completes it and samples a non-first token."""
        return self._generated[rid] >= 1 and rank.computed[rid] + tokens == self._known_tokens(rid)

    def _schedule(self, rank: _Rank) -> None:
        """Fill ``rank.scheduled`` for the next step (running first, then waiting)."""
        budget = self.config.max_num_batched_tokens
        scheduled = []
        preempted = False
        i = 0
        while i < len(rank.running) and budget > 0:
            rid = rank.running[i]
            tokens = min(self._known_tokens(rid) - rank.computed[rid], budget)
            if self._allocate(rank, rid, tokens):
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
        ):
            rid = rank.waiting[0]
            tokens = min(self._known_tokens(rid) - rank.computed[rid], budget)
            if not self._allocate(rank, rid, tokens):
                break
            rank.waiting.popleft()
            rank.running.append(rid)
            scheduled.append((rid, tokens))
            budget -= tokens
        rank.scheduled = scheduled

    def _allocate(self, rank: _Rank, rid: int, tokens: int) -> bool:
        """Take the blocks ``tokens`` more tokens of ``rid`` need, if that many are free."""
        size = self.config.block_size
        need = -(-(rank.computed[rid] + tokens) // size) - rank.blocks[rid]
        if need > rank.free_blocks:
            return False
        rank.free_blocks -= need
        rank.blocks[rid] += need
        return True

    def _preempt(self, rank: _Rank, rid: int) -> None:
        """Free ``rid``'s KV and put it back at the head of the queue to recompute later."""
        rank.free_blocks += rank.blocks[rid]
        rank.blocks[rid] = 0
        rank.computed[rid] = 0
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
        used = sum(self.blocks_per_rank - r.free_blocks for r in self.ranks)
        self._recorder.kv_changed(self.index, now, used / (self.blocks_per_rank * len(self.ranks)))
