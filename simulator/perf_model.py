"""Roofline performance model of one forward pass (a prefill batch or a decode step).

A pass costs ``max(compute_s, memory_s) + allreduce_s + step_overhead_s``, where

- ``compute_s = FLOPs / (TP * peak_flops * mfu)``: matmuls plus attention scores;
- ``memory_s = bytes_per_gpu / (bandwidth * mbu)``: weights read once per pass plus KV-cache
  traffic (prefill writes new KV and reads cached prefix KV; decode reads all resident KV);
- ``allreduce_s``: two ring all-reduces of the activations per layer under tensor parallelism,
  at the link's per-direction bandwidth times ``link_util``;
- ``step_overhead_s``: what a pass costs beyond the roofline (launches, host scheduling,
  sampling), fitted.

The efficiencies come from a least-squares fit on measured latencies
(:mod:`simulator.calibration`). GPUs without public measurements (H20, L20, ...) reuse the
fitted efficiencies with their own spec sheets: their performance is *derived*, not measured.

SM activity follows DCGM's definition (an SM is active while at least one warp is resident on
it), not arithmetic: the roofline kernels (GEMMs, attention) tile every SM and keep their warps
resident whether they compute or wait on memory, so ``max(compute_s, memory_s)`` counts as
SM-active; the all-reduce (NCCL runs on a few channels, i.e. a few SMs) and the fixed per-pass
overhead (launches, host scheduling, small elementwise kernels) count as idle. The compute
fraction ``compute_s / duration_s`` tells compute-bound from memory-bound passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simulator.hardware import BF16_BYTES, GpuSpec, ModelSpec


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


@dataclass(frozen=True, slots=True)
class Work:
    """What a pass asks of the hardware, before any efficiency is applied.

    Attributes
    ----------
    flops : float
        Floating-point operations of the whole model (all TP ranks together).
    bytes_per_gpu : float
        Device-memory traffic of one TP rank.
    allreduce_bytes_per_gpu : float
        Bytes one TP rank sends over the interconnect.
    """

    flops: float
    bytes_per_gpu: float
    allreduce_bytes_per_gpu: float


@dataclass(frozen=True, slots=True)
class StepCost:
    """Duration of one pass, its arithmetic time and its time in SM-wide roofline kernels."""

    duration_s: float
    compute_s: float
    kernel_s: float

    @property
    def compute_fraction(self) -> float:
        """Share of the pass the arithmetic alone would take: near 1 when compute-bound."""
        return min(self.compute_s / self.duration_s, 1.0)

    @property
    def sm_active_fraction(self) -> float:
        """Share of the pass with warps resident on every SM (DCGM_FI_PROF_SM_ACTIVE)."""
        return min(self.kernel_s / self.duration_s, 1.0)


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
        self._body_params_per_token = m.num_layers * (
            m.attention_params_per_layer
            + m.experts_per_token * m.expert_params
            + m.router_params_per_layer
        )
        self._attention_flops_per_pair = 4 * m.num_layers * m.q_dim  # QK^T and AV
        self._dense_weight_params = (
            m.num_layers * (m.attention_params_per_layer + m.router_params_per_layer)
            + m.lm_head_params
        )
        self._dense_params_per_token = m.num_layers * (
            m.attention_params_per_layer + m.router_params_per_layer
        )
        self._expert_params_per_token = m.num_layers * m.experts_per_token * m.expert_params

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
        decode_kv_tokens: int = 0,
        moe_tokens: int | None = None,
    ) -> Work:
        """Work of one forward pass mixing prefill chunks and decode tokens (one rank).

        The pass reads the weights once for all its tokens, which is why a chunk riding along
        with a decode batch costs little while decode is memory-bound.

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
        decode_kv_tokens : int
            KV those decode requests attend to, all together.
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
        expert_tokens = group_tokens * self.tp / self._expert_shards
        flops = (
            2 * self._dense_params_per_token * tokens
            + 2 * self._expert_params_per_token * expert_tokens
            + 2 * self.model.lm_head_params * sequences
            + self._attention_flops_per_pair * (pairs + decode_kv_tokens)
        )
        kv_bytes = (total_new + sum(prefill_context) + decode_kv_tokens) * (
            self.model.kv_bytes_per_token
        )
        return Work(
            flops=flops,
            bytes_per_gpu=self._weight_bytes_per_gpu(group_tokens) + kv_bytes / self._kv_shards,
            allreduce_bytes_per_gpu=self._allreduce_bytes(tokens)
            + self._expert_exchange_bytes(tokens),
        )

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

    def decode_work(self, batch_size: int, kv_tokens: int) -> Work:
        """Work of one decode step: ``batch_size`` new tokens over ``kv_tokens`` resident KV."""
        return self.step_work(decode_batch=batch_size, decode_kv_tokens=kv_tokens)

    def ideal_seconds(self, work: Work) -> tuple[float, float, float]:
        """Compute, memory and all-reduce time of ``work`` at 100% efficiency.

        The calibration fits efficiencies against these three terms.
        """
        return (
            work.flops / (self.tp * self._peak_flops),
            work.bytes_per_gpu / self._bandwidth_bps,
            work.allreduce_bytes_per_gpu / self._link_bps,
        )

    def cost(self, work: Work) -> StepCost:
        """Duration, compute time and roofline-kernel time of a pass under the fitted
        efficiencies."""
        eff = self.efficiency
        compute_ideal_s, memory_ideal_s, allreduce_ideal_s = self.ideal_seconds(work)
        compute_s = compute_ideal_s / eff.mfu
        kernel_s = max(compute_s, memory_ideal_s / eff.mbu)
        duration_s = kernel_s + allreduce_ideal_s / eff.link_util + eff.step_overhead_s
        return StepCost(duration_s=duration_s, compute_s=compute_s, kernel_s=kernel_s)

    def prefill(self, new_tokens: Sequence[int], cached_tokens: Sequence[int]) -> StepCost:
        """Cost of prefilling a batch (see :meth:`prefill_work`)."""
        return self.cost(self.prefill_work(new_tokens, cached_tokens))

    def decode(self, batch_size: int, kv_tokens: int) -> StepCost:
        """Cost of one decode step (see :meth:`decode_work`)."""
        return self.cost(self.decode_work(batch_size, kv_tokens))

    def _weight_bytes_per_gpu(self, group_tokens: int) -> float:
        """Weight bytes one GPU reads in a pass whose experts serve ``group_tokens`` tokens.

        With uniform routing a token picks ``k`` of ``E`` experts, so ``n`` tokens touch
        ``E * (1 - (1 - k/E)**n)`` distinct experts per layer; dense models have ``E = k = 1``
        and read their single FFN. Under EP the experts serve ``group_tokens`` (every rank's)
        and each GPU reads its ``1 / ep`` share of those touched.
        """
        m = self.model
        touched = m.num_experts * (1 - (1 - m.experts_per_token / m.num_experts) ** group_tokens)
        dense = self._dense_weight_params / self.tp
        experts = m.num_layers * touched * m.expert_params / self._expert_shards
        return (dense + experts) * BF16_BYTES

    def _allreduce_bytes(self, tokens: int) -> float:
        """Bytes one rank sends for the two ring all-reduces per layer of ``tokens`` activations."""
        message = tokens * self.model.hidden_size * BF16_BYTES
        return 2 * self.model.num_layers * self._ring_factor * message

    def _expert_exchange_bytes(self, tokens: int) -> float:
        """Bytes one GPU sends to move its ``tokens`` activations to and from the other EP ranks.

        Each MoE layer gathers every rank's hidden states before the experts and scatters the
        results back after them (two exchanges of ``(ep - 1) / ep`` of the activations).
        """
        if self.ep == 1:
            return 0.0
        message = tokens * self.model.hidden_size * BF16_BYTES
        return 2 * self.model.num_layers * (self.ep - 1) / self.ep * message
