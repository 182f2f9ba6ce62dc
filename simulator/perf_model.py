"""Roofline performance model of one forward pass (a prefill batch or a decode step).

A pass runs three groups of kernels one after another, each at its own roofline:

- **projections**: the attention projections (and a MoE router), plus the LM head on each
  sequence's last position;
- **FFN**: the dense FFN, or the experts the pass's tokens touch;
- **attention**: scores over the context, with the KV-cache traffic (prefill writes new KV and
  reads cached prefix KV; decode reads all resident KV).

So a pass costs ``sum over groups of max(compute_s, memory_s) + allreduce_s +
step_overhead_s``, where in each group

- ``compute_s = FLOPs / (TP * peak_flops * mfu)``;
- ``memory_s = bytes_per_gpu / (bandwidth * mbu)``: the group's weights, read once per pass,
  or its KV traffic;
- ``allreduce_s``: two ring all-reduces of the activations per layer under tensor parallelism
  (and the expert exchange under expert parallelism), at the link's per-direction bandwidth
  times ``link_util``;
- ``step_overhead_s``: what a pass costs beyond its kernels' rooflines (launches, host
  scheduling, small elementwise kernels), fitted.

Summing the groups, not taking one ``max`` over the pass, is what a prompt chunk riding with
a decode batch costs on a real engine: its projections and FFN turn compute-bound while the
attention kernel still streams every decoder's KV. A pure prefill or pure decode pass costs
about the same either way.

Every formula here is written once and accepts arrays wherever a token count may vary.
:meth:`PerfModel.decode_steps` prices many decode steps (of any batch sizes) in a single call
that is, element by element, bit for bit the scalar :meth:`PerfModel.decode`: it spells out
:meth:`PerfModel.cost` over the KV-dependent attention group, operation for operation, on top
of the per-batch terms, which it computes once per batch size. :meth:`PerfModel.stride_clock`
times a stride of steps of one batch in closed form, for the event loop, which needs only when
steps end.

The efficiencies come from measured latencies: a least-squares fit on Splitwise's 70B passes
(:mod:`simulator.calibration`, the P/D pools' default) or a modern engine's kernel profiles
(:mod:`simulator.engine_calibration`, the colocated engines'). GPUs without public measurements
(H20, L20, ...) reuse them with their own spec sheets: their performance is *derived*, not
measured.

SM activity follows DCGM's definition (an SM is active while at least one warp is resident on
it), not arithmetic: the roofline kernels (GEMMs, attention) tile every SM and keep their warps
resident whether they compute or wait on memory, so each group's ``max(compute_s, memory_s)``
counts as SM-active; the all-reduce (NCCL runs on a few channels, i.e. a few SMs) and the fixed
per-pass overhead (launches, host scheduling, small elementwise kernels) count as idle. The
compute fraction ``compute_s / duration_s`` tells compute-bound from memory-bound passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from simulator.hardware import BF16_BYTES, GpuSpec, ModelSpec
from simulator.stride_clock import StrideClock


@dataclass(frozen=True)
class Efficiency:
    """How far real passes fall short of the spec sheet; one set serves every GPU.

    Attributes
    ----------
    mfu : float
        Fraction of peak tensor FLOPS that compute-bound work achieves.
    mbu : float
        Fraction of peak memory bandwidth that memory-bound work achieves.
    link_util : float
        Fraction of the per-direction interconnect bandwidth that all-reduces achieve.
    step_overhead_s : float
        Fixed cost of every pass beyond the roofline.
    """

    mfu: float
    mbu: float
    link_util: float
    step_overhead_s: float


def _maximum(a: float | np.ndarray, b: float | np.ndarray) -> float | np.ndarray:
    """``max`` of two floats, elementwise if either is an array: the one formula serves both
    paths, and scalar costs stay plain floats (cheaper to carry through the event loop than
    numpy scalars)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.maximum(a, b)
    return max(a, b)


def _minimum(a: float | np.ndarray, b: float) -> float | np.ndarray:
    """``min`` counterpart of :func:`_maximum`."""
    return np.minimum(a, b) if isinstance(a, np.ndarray) else min(a, b)


class KernelGroup(NamedTuple):
    """What one group of kernels asks of the hardware: FLOPs of the whole model (all TP ranks
    together) and device-memory bytes of one rank. Arrays, one element per pass, for the
    attention group of a decode stride."""

    flops: float | np.ndarray
    bytes_per_gpu: float | np.ndarray


@dataclass(frozen=True, slots=True)
class Work:
    """What a pass asks of the hardware, before any efficiency is applied.

    Attributes
    ----------
    projections, ffn, attention : KernelGroup
        The pass's three kernel groups (see the module docstring), in the order they run.
    allreduce_bytes_per_gpu : float
        Bytes one TP rank sends over the interconnect.
    """

    projections: KernelGroup
    ffn: KernelGroup
    attention: KernelGroup
    allreduce_bytes_per_gpu: float

    @property
    def groups(self) -> tuple[KernelGroup, KernelGroup, KernelGroup]:
        """The kernel groups in the order they run."""
        return self.projections, self.ffn, self.attention


@dataclass(frozen=True, slots=True)
class StepCost:
    """Duration of one pass, its arithmetic time and its time in SM-wide roofline kernels.

    Fields (and properties) are arrays, one element per step, for a decode stride.
    """

    duration_s: float | np.ndarray
    compute_s: float | np.ndarray
    kernel_s: float | np.ndarray

    @property
    def compute_fraction(self) -> float | np.ndarray:
        """Share of the pass the arithmetic alone would take: near 1 when compute-bound."""
        return _minimum(self.compute_s / self.duration_s, 1.0)

    @property
    def sm_active_fraction(self) -> float | np.ndarray:
        """Share of the pass with warps resident on every SM (DCGM_FI_PROF_SM_ACTIVE)."""
        return _minimum(self.kernel_s / self.duration_s, 1.0)


def _per_batch(batch_sizes: np.ndarray, terms) -> tuple[np.ndarray, ...]:
    """``terms(b)`` (a tuple of floats) for each element of ``batch_sizes``, as columns; each
    distinct size is computed once (sizes are small integers: a lookup table, no sort)."""
    present = np.flatnonzero(np.bincount(batch_sizes))
    table = np.zeros((int(batch_sizes.max(initial=0)) + 1, len(terms(1))))
    for b in present:
        table[b] = terms(int(b))
    return tuple(column[batch_sizes] for column in table.T)


class PerfModel:
    """Latency of prefill batches and decode steps of ``model`` on ``tp`` GPUs of one type.

    Parameters
    ----------
    model, gpu : ModelSpec, GpuSpec
        What runs, and on what.
    tp : int
        Tensor-parallel degree: weights, FLOPs and KV heads are split over ``tp`` GPUs.
    efficiency : Efficiency
        Fitted efficiencies (:func:`simulator.calibration.default_efficiency`).
    ep : int
        Expert-parallel degree (vLLM ``enable_expert_parallel``: ``tp * data-parallel size``
        GPUs each hold ``num_experts / ep`` whole experts). 1 means experts are TP-sliced. Under
        EP a pass's experts serve the tokens of every data-parallel rank (``moe_tokens`` of
        :meth:`step_work`), and each token's activations are exchanged with the other ranks.
    """

    def __init__(
        self, model: ModelSpec, gpu: GpuSpec, tp: int, efficiency: Efficiency, ep: int = 1
    ) -> None:
        if tp < 1 or ep < 1:
            raise ValueError(f"parallel degrees must be >= 1, got tp={tp}, ep={ep}")
        if ep > 1 and (not model.is_moe or ep % tp or model.num_experts % ep):
            raise ValueError(
                f"expert parallelism {ep} needs a MoE model whose experts split evenly over a "
                f"multiple of tp={tp} GPUs"
            )
        self.model = model
        self.gpu = gpu
        self.tp = tp
        self.ep = ep
        # With EP the experts are split whole over ep GPUs; without it TP slices every expert.
        self._expert_shards = ep if ep > 1 else tp
        self.efficiency = efficiency
        # KV heads cannot be split finer than one head per rank; beyond that they replicate.
        self._kv_shards = min(tp, model.num_kv_heads)
        self._peak_flops = gpu.dense_bf16_tflops * 1e12
        self._bandwidth_bps = gpu.memory_bandwidth_gbps * 1e9
        self._link_bps = gpu.interconnect_gbps * 1e9 / 2  # per direction
        self._ring_factor = 2 * (tp - 1) / tp
        m = model
        self._attention_flops_per_pair = 4 * m.num_layers * m.q_dim  # QK^T and AV
        self._dense_weight_params = (
            m.num_layers * (m.attention_params_per_layer + m.router_params_per_layer)
            + m.lm_head_params
        )
        self._dense_params_per_token = m.num_layers * (
            m.attention_params_per_layer + m.router_params_per_layer
        )
        self._expert_params_per_token = m.num_layers * m.experts_per_token * m.expert_params
        self._decode_work_without_kv: dict[int, Work] = {}  # see _decode_without_kv
        self._decode_terms: dict[int, tuple[float, float, float]] = {}  # see _stride_terms
        self._token_cache: dict[tuple[int, int], tuple] = {}  # see _token_terms
        self._kv_bytes_per_token = model.kv_bytes_per_token
        # Decode attention time per resident KV token: the larger of its scoring and its
        # reading time, both proportional to the KV (so a stride's steps grow linearly).
        self._attention_s_per_kv_token = max(
            self._attention_flops_per_pair / (tp * self._peak_flops) / efficiency.mfu,
            self._kv_bytes_per_token / self._kv_shards / self._bandwidth_bps / efficiency.mbu,
        )

    def kv_capacity_tokens(self, memory_fraction: float) -> int:
        """Tokens of KV cache that fit in what the weights leave of ``memory_fraction`` of memory.

        Raises
        ------
        ValueError
            If the weights alone do not fit.
        """
        free_per_gpu = self.gpu.memory_gb * 1e9 * memory_fraction - self.weight_bytes_per_gpu
        if free_per_gpu <= 0:
            raise ValueError(
                f"{self.model.name} ({self.weight_bytes_per_gpu / 1e9:.0f} GB of weights per GPU) "
                f"does not fit on {self.gpu.name} (tp={self.tp}, ep={self.ep}) at memory "
                f"fraction {memory_fraction}"
            )
        return int(free_per_gpu * self._kv_shards / self.model.kv_bytes_per_token)

    @property
    def weight_bytes_per_gpu(self) -> float:
        """Resident weights of one GPU: dense weights split by TP, experts by their shards."""
        m = self.model
        expert_bytes = m.num_layers * m.num_experts * m.expert_params * BF16_BYTES
        dense_bytes = m.weight_bytes - expert_bytes
        return dense_bytes / self.tp + expert_bytes / self._expert_shards

    def step_work(
        self,
        prefill_new: Sequence[int] = (),
        prefill_context: Sequence[int] = (),
        decode_batch: int = 0,
        decode_kv_tokens: int | np.ndarray = 0,
        moe_tokens: int | None = None,
    ) -> Work:
        """Work of one forward pass mixing prefill chunks and decode tokens (one rank).

        The pass reads the weights once for all its tokens, which is why a chunk riding along
        with a decode batch costs little while its projections and FFN stay memory-bound.

        Parameters
        ----------
        prefill_new : sequence of int
            Prompt tokens each prefilling request computes in this pass (a whole prompt, a
            chunk of one, or its cache misses).
        prefill_context : sequence of int
            Tokens each of those requests already has in KV (cached prefix or earlier chunks):
            attended to and read, not recomputed.
        decode_batch : int
            Requests generating one token each.
        decode_kv_tokens : int or np.ndarray
            KV those decode requests attend to, all together; an integer array prices one pass
            per element (the attention group of the returned :class:`Work` becomes arrays).
        moe_tokens : int or None
            Tokens, over all data-parallel ranks, that this pass's experts serve under expert
            parallelism; None means this pass's own tokens (no EP).

        Returns
        -------
        Work
        """
        total_new = sum(prefill_new)
        tokens = total_new + decode_batch
        group_tokens = tokens if moe_tokens is None else moe_tokens
        pairs = sum(
            t * c + t * (t + 1) / 2 for t, c in zip(prefill_new, prefill_context, strict=True)
        )
        # Logits are computed only for each sequence's last position.
        sequences = len(prefill_new) + decode_batch
        projections, ffn, allreduce_bytes = self._token_terms(tokens, group_tokens)
        kv_bytes = (total_new + sum(prefill_context)) * self._kv_bytes_per_token
        without_decode_kv = Work(
            projections=KernelGroup(
                projections.flops + 2 * self.model.lm_head_params * sequences,
                projections.bytes_per_gpu,
            ),
            ffn=ffn,
            attention=KernelGroup(
                self._attention_flops_per_pair * pairs, kv_bytes / self._kv_shards
            ),
            allreduce_bytes_per_gpu=allreduce_bytes,
        )
        return self._with_decode_kv(without_decode_kv, decode_kv_tokens)

    def _with_decode_kv(self, work: Work, kv_tokens: int | np.ndarray) -> Work:
        """``work`` plus decode attention over ``kv_tokens`` resident KV: its score FLOPs and
        the KV reads.

        Split from :meth:`step_work` so that a decode stride adds only this, the part that
        changes from step to step, to a batch's cached remainder (:meth:`decode_steps`).
        """
        attention = KernelGroup(
            work.attention.flops + self._attention_flops_per_pair * kv_tokens,
            work.attention.bytes_per_gpu + kv_tokens * self._kv_bytes_per_token / self._kv_shards,
        )
        return Work(work.projections, work.ffn, attention, work.allreduce_bytes_per_gpu)

    def prefill_work(self, new_tokens: Sequence[int], cached_tokens: Sequence[int]) -> Work:
        """Work of prefilling a batch of requests.

        Parameters
        ----------
        new_tokens : sequence of int
            Prompt tokens each request must compute (cache misses).
        cached_tokens : sequence of int
            Prefix tokens each request finds in the prefix cache; attended to, not recomputed.
        """
        return self.step_work(prefill_new=new_tokens, prefill_context=cached_tokens)

    def decode_work(self, batch_size: int, kv_tokens: int | np.ndarray) -> Work:
        """Work of one decode step: ``batch_size`` new tokens over ``kv_tokens`` resident KV
        (one step per element when ``kv_tokens`` is an array)."""
        return self.step_work(decode_batch=batch_size, decode_kv_tokens=kv_tokens)

    def ideal_seconds(self, work: Work) -> tuple[np.ndarray, np.ndarray, float]:
        """Compute and memory time of each kernel group (projections, FFN, attention), and the
        all-reduce time, at 100% efficiency.

        The calibrations fit efficiencies against these terms.
        """
        flops = np.array([group.flops for group in work.groups], dtype=float)
        bytes_per_gpu = np.array([group.bytes_per_gpu for group in work.groups], dtype=float)
        return (
            flops / (self.tp * self._peak_flops),
            bytes_per_gpu / self._bandwidth_bps,
            work.allreduce_bytes_per_gpu / self._link_bps,
        )

    def cost(self, work: Work) -> StepCost:
        """Duration, compute time and roofline-kernel time of a pass under the fitted
        efficiencies (of each pass, elementwise, when ``work`` holds arrays)."""
        eff = self.efficiency
        compute_s, kernel_s = self._rooflines(work.groups)
        duration_s = kernel_s + work.allreduce_bytes_per_gpu / self._link_bps / eff.link_util
        duration_s += eff.step_overhead_s
        return StepCost(duration_s=duration_s, compute_s=compute_s, kernel_s=kernel_s)

    def _rooflines(self, groups) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Arithmetic time and roofline time, ``max(compute, memory)``, of kernel groups that run
        one after another, summed in order (``groups``: (FLOPs, bytes per GPU) pairs)."""
        eff = self.efficiency
        compute_s = kernel_s = 0.0
        for flops, bytes_per_gpu in groups:
            group_compute_s = flops / (self.tp * self._peak_flops) / eff.mfu
            group_memory_s = bytes_per_gpu / self._bandwidth_bps / eff.mbu
            compute_s = compute_s + group_compute_s
            kernel_s = kernel_s + _maximum(group_compute_s, group_memory_s)
        return compute_s, kernel_s

    def prefill(self, new_tokens: Sequence[int], cached_tokens: Sequence[int]) -> StepCost:
        """Cost of prefilling a batch (see :meth:`prefill_work`).

        ``cost(prefill_work(...))`` spelled out, operation for operation (so bit for bit the
        same), without the intermediate objects: the engine prices every prefill batch.
        """
        tokens = sum(new_tokens)
        pairs = sum(t * c + t * (t + 1) / 2 for t, c in zip(new_tokens, cached_tokens, strict=True))
        projections, ffn, allreduce_bytes = self._token_terms(tokens, tokens)
        kv_bytes = (tokens + sum(cached_tokens)) * self._kv_bytes_per_token
        groups = (
            (
                projections.flops + 2 * self.model.lm_head_params * len(new_tokens),
                projections.bytes_per_gpu,
            ),
            ffn,
            (self._attention_flops_per_pair * pairs, kv_bytes / self._kv_shards),
        )
        eff = self.efficiency
        compute_s, kernel_s = self._rooflines(groups)
        duration_s = kernel_s + allreduce_bytes / self._link_bps / eff.link_util
        duration_s += eff.step_overhead_s
        return StepCost(duration_s=duration_s, compute_s=compute_s, kernel_s=kernel_s)

    def _token_terms(
        self, tokens: int | np.ndarray, group_tokens: int | np.ndarray
    ) -> tuple[KernelGroup, KernelGroup, float]:
        """What a pass of ``tokens`` tokens (its experts serving ``group_tokens``) costs whatever
        its requests: its projections before the LM head, its FFN, and its all-reduce bytes.
        Cached per whole token counts: a simulation prices many passes of the same sizes
        (arrays, which the fast mode prices elementwise, are not cached)."""
        key = (tokens, group_tokens)
        cacheable = isinstance(tokens, int) and isinstance(group_tokens, int)
        terms = self._token_cache.get(key) if cacheable else None
        if terms is None:
            expert_tokens = group_tokens * self.tp / self._expert_shards
            terms = (
                KernelGroup(
                    2 * self._dense_params_per_token * tokens,
                    self._dense_weight_params / self.tp * BF16_BYTES,
                ),
                KernelGroup(
                    2 * self._expert_params_per_token * expert_tokens,
                    self._ffn_bytes_per_gpu(group_tokens),
                ),
                self._allreduce_bytes(tokens) + self._expert_exchange_bytes(tokens),
            )
            if cacheable:
                self._token_cache[key] = terms
        return terms

    def decode(self, batch_size: int, kv_tokens: int) -> StepCost:
        """Cost of one decode step (see :meth:`decode_work`)."""
        return self.cost(self._with_decode_kv(self._decode_without_kv(batch_size), kv_tokens))

    def decode_stride(self, batch_size: int, kv_tokens: int, steps: int) -> StepCost:
        """Costs of ``steps`` consecutive decode steps of an unchanging batch, as arrays.

        Each step adds one token per request to the resident KV, so step ``j`` (from 0) reads
        ``kv_tokens + j * batch_size`` tokens (:meth:`decode_steps` with those arrays).
        """
        kv = np.arange(kv_tokens, kv_tokens + steps * batch_size, batch_size, dtype=np.int64)
        return self.decode_steps(np.full(steps, batch_size, dtype=np.int64), kv)

    def decode_steps(self, batch_sizes: np.ndarray, kv_tokens: np.ndarray) -> StepCost:
        """Costs of many decode steps at once, one per element: element ``j`` equals
        ``decode(batch_sizes[j], kv_tokens[j])`` bit for bit (the same operations run in the
        same order, elementwise, on the per-batch terms of :meth:`_stride_terms`).

        The engine logs decode strides unpriced and prices every logged step in one call at
        the end (:meth:`simulator.recorder.Recorder.passes`).
        """
        eff = self.efficiency
        batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
        kv = np.asarray(kv_tokens, dtype=np.int64)
        compute_s, kernel_s, allreduce_s = _per_batch(batch_sizes, self._stride_terms)
        # cost()'s attention group spelled out, operation for operation, with in-place updates
        # where they save an allocation (a decode batch's attention group holds only its KV).
        attention_compute_s = self._attention_flops_per_pair * kv / (self.tp * self._peak_flops)
        attention_compute_s /= eff.mfu
        attention_memory_s = kv * self._kv_bytes_per_token / self._kv_shards
        attention_memory_s /= self._bandwidth_bps
        attention_memory_s /= eff.mbu
        compute_s += attention_compute_s
        kernel_s += np.maximum(attention_compute_s, attention_memory_s, out=attention_memory_s)
        duration_s = kernel_s + allreduce_s
        duration_s += eff.step_overhead_s
        return StepCost(duration_s=duration_s, compute_s=compute_s, kernel_s=kernel_s)

    def stride_clock(self, batch_size: int, kv_tokens: int) -> StrideClock:
        """When each step of a stride of an unchanging batch ends, in closed form.

        A decode step's attention reads (and scores) KV in proportion to its tokens, which grow
        by ``batch_size`` a step, while its projections and FFN cost the same every step; so
        step ``j``'s kernel time is a line in ``j`` and the stride's elapsed time after ``k``
        steps an arithmetic series: O(1) per stride, where summing priced steps costs
        O(steps). It matches the running sum of :meth:`decode` durations to rounding (~1e-15
        relative), not bit for bit. The clock holds however many steps the stride runs.
        """
        _, kernel_s, allreduce_s = self._stride_terms(batch_size)
        per_token_s = self._attention_s_per_kv_token
        return StrideClock(
            kernel_s + per_token_s * kv_tokens,
            per_token_s * batch_size,
            allreduce_s + self.efficiency.step_overhead_s,
        )

    def stride_clocks(self, batch_sizes: np.ndarray, kv_tokens: np.ndarray) -> np.ndarray:
        """:meth:`stride_clock` of many strides at once, bit for bit, one row of clock fields per
        stride (the recorder times the steps of every logged stride from these)."""
        batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
        kv = np.asarray(kv_tokens, dtype=np.int64)
        _, kernel_s, allreduce_s = _per_batch(batch_sizes, self._stride_terms)
        per_token_s = self._attention_s_per_kv_token
        return np.column_stack(
            (
                kernel_s + per_token_s * kv,
                per_token_s * batch_sizes,
                allreduce_s + self.efficiency.step_overhead_s,
            )
        )

    def _stride_terms(self, batch_size: int) -> tuple[float, float, float]:
        """What every decode step of ``batch_size`` requests shares whatever its KV: the
        compute and roofline time of its projections and FFN, and its all-reduce time
        under ``link_util`` (the same operations as :meth:`cost`'s)."""
        terms = self._decode_terms.get(batch_size)
        if terms is None:
            work = self._decode_without_kv(batch_size)
            compute_s, kernel_s = self._rooflines((work.projections, work.ffn))
            allreduce_s = work.allreduce_bytes_per_gpu / self._link_bps / self.efficiency.link_util
            terms = self._decode_terms[batch_size] = (compute_s, kernel_s, allreduce_s)
        return terms

    def _decode_without_kv(self, batch_size: int) -> Work:
        """Decode work of ``batch_size`` requests before their KV reads and attention,
        computed once per batch size: steps of a batch differ only in the part
        :meth:`_with_decode_kv` adds."""
        work = self._decode_work_without_kv.get(batch_size)
        if work is None:
            work = self._decode_work_without_kv[batch_size] = self.decode_work(batch_size, 0)
        return work

    def _ffn_bytes_per_gpu(self, group_tokens: int) -> float:
        """FFN weight bytes one GPU reads in a pass whose experts serve ``group_tokens`` tokens.

        With uniform routing a token picks ``k`` of ``E`` experts, so ``n`` tokens touch
        ``E * (1 - (1 - k/E)**n)`` distinct experts per layer; dense models have ``E = k = 1``
        and read their single FFN. Under EP the experts serve ``group_tokens`` (every rank's)
        and each GPU reads its ``1 / ep`` share of those touched.
        """
        m = self.model
        touched = m.num_experts * (1 - (1 - m.experts_per_token / m.num_experts) ** group_tokens)
        return m.num_layers * touched * m.expert_params / self._expert_shards * BF16_BYTES

    def _allreduce_bytes(self, tokens: int) -> float:
        """Bytes one rank sends for the two ring all-reduces per layer of ``tokens`` activations."""
        message = tokens * self.model.hidden_size * BF16_BYTES
        return 2 * self.model.num_layers * self._ring_factor * message

    def _expert_exchange_bytes(self, tokens: int) -> float:
        """Bytes one GPU sends to move its ``tokens`` activations to and from the other EP ranks.

        vLLM's default expert-parallel backend (``allgather_reducescatter``, vLLM's
        ``AgRsAll2AllManager``) does not send a token only where its experts live: each MoE
        layer all-gathers every data-parallel rank's hidden states before the experts
        (``all_gatherv``) and reduce-scatters the expert outputs back after them
        (``reduce_scatterv``). So each of the ``ep / tp`` data-parallel ranks sends its tokens'
        hidden states to every other one, and gets their partial outputs back: two exchanges of
        ``(ep / tp - 1)`` times its activations per layer. (The gathered top-k ids and weights,
        64 bytes a token, add under 2% for a 2,048-wide model and are left out.)
        """
        if self.ep == 1:
            return 0.0
        message = tokens * self.model.hidden_size * BF16_BYTES
        return 2 * self.model.num_layers * (self.ep // self.tp - 1) * message
