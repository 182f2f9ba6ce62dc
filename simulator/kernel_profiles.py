"""Kernel efficiencies of a current serving engine, read off Vidur's per-operator GPU profiles.

The colocated mode models engines like vLLM 0.19 (CUDA graphs, FlashAttention-class decode
kernels). Whole-engine benchmarks of older vLLM versions (Argonne's, :mod:`simulator.
engine_calibration`) mix their kernels' speed with their host overhead, so the kernels' speed
is taken from measurements of the kernels themselves: Vidur's profiler (Agrawal et al., MLSys
2024; ``data/perf/vidur/``, MIT) timed each operator of a layer with CUDA events or Kineto.

- **Weight streaming** (``mbu`` of the projections and FFN): the four linear operators of a
  Llama layer (QKV, output, gate-up, down) at TP 1 and at most :data:`STREAMING_MAX_TOKENS`
  tokens a pass, where they do at most 16 FLOPs per weight byte (memory-bound on every GPU
  here): weight bytes / time / peak bandwidth.
- **KV streaming** (``mbu`` of the attention): FlashAttention's decode kernel on a 70B-class
  layer at TP 2 (4 KV heads of 128 per GPU, so 2 KiB of BF16 K and V per token and layer),
  over working sets of at least :data:`KV_MIN_BYTES` (below it the kernel's fixed ~15 us
  launch floor dominates): KV bytes / time / peak bandwidth.
- **Compute** (``mfu``): the same linear operators at :data:`COMPUTE_MIN_TOKENS` tokens or
  more: FLOPs / time / peak dense BF16 FLOPS.

Each efficiency is the median over its samples. The roofline model has one ``mbu`` for both
kinds of streaming; :func:`kernel_efficiency` takes the median of all memory-bound samples,
and :func:`streaming_medians` reports the two kinds apart (they agree within a few points).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator.hardware import BF16_BYTES, GPUS
from simulator.paths import VIDUR_ATTENTION_CSV, VIDUR_LINEAR_CSVS

#: Most tokens a pass of the linear operators may carry to count as weight streaming.
STREAMING_MAX_TOKENS = 16
#: Fewest tokens a pass of the linear operators must carry to count as compute-bound.
COMPUTE_MIN_TOKENS = 1024
#: Smallest decode-attention working set (KV bytes of one layer on one GPU) that counts.
KV_MIN_BYTES = 256 * 2**20
#: KV bytes per token and layer of the profiled attention shape (4 KV heads x 128 x K and V).
_ATTENTION_KV_BYTES_PER_TOKEN = 4 * 128 * 2 * BF16_BYTES
_LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")


@dataclass(frozen=True)
class KernelEfficiency:
    """Median kernel efficiencies and the number of samples behind each."""

    mfu: float
    mbu: float
    compute_samples: int
    streaming_samples: int


def linear_layer_samples() -> pl.DataFrame:
    """One row per profiled pass of a layer's linear operators at TP 1: ``gpu``, ``model``,
    ``num_tokens``, ``seconds`` (the four operators' median times summed), ``weight_bytes``,
    ``flops``, and the achieved ``bandwidth_fraction`` and ``flops_fraction`` of the GPU's
    spec sheet."""
    frames = []
    for (gpu_name, model), path in VIDUR_LINEAR_CSVS.items():
        gpu = GPUS[gpu_name]
        raw = pl.read_csv(path).filter(pl.col("num_tensor_parallel_workers") == 1)
        hidden, heads, kv_heads, ffn = (
            pl.col("n_embd"),
            pl.col("n_head"),
            pl.col("n_kv_head"),
            pl.col("n_expanded_embd"),
        )
        head_dim = hidden // heads
        params = hidden * (heads + 2 * kv_heads) * head_dim + hidden * hidden + 3 * hidden * ffn
        frames.append(
            raw.select(
                gpu=pl.lit(gpu_name),
                model=pl.lit(model),
                num_tokens=pl.col("num_tokens"),
                seconds=pl.sum_horizontal(pl.col(f"time_stats.{op}.median") for op in _LINEAR_OPS)
                / 1e3,
                weight_bytes=params * BF16_BYTES,
                flops=2 * params * pl.col("num_tokens"),
                peak_bps=pl.lit(gpu.memory_bandwidth_gbps * 1e9),
                peak_flops=pl.lit(gpu.dense_bf16_tflops * 1e12),
            )
        )
    return (
        pl.concat(frames)
        .with_columns(
            bandwidth_fraction=pl.col("weight_bytes") / pl.col("seconds") / pl.col("peak_bps"),
            flops_fraction=pl.col("flops") / pl.col("seconds") / pl.col("peak_flops"),
        )
        .drop("peak_bps", "peak_flops")
    )


def decode_attention_samples() -> pl.DataFrame:
    """One row per profiled decode-attention kernel on A100-80GB: ``batch_size``,
    ``kv_cache_size`` (tokens per request), ``seconds``, ``kv_bytes`` and the achieved
    ``bandwidth_fraction``."""
    peak_bps = GPUS["A100-80GB"].memory_bandwidth_gbps * 1e9
    return (
        pl.read_csv(VIDUR_ATTENTION_CSV)
        .filter(~pl.col("is_prefill"))
        .select(
            "batch_size",
            "kv_cache_size",
            seconds=pl.col("time_stats.attn_decode.median") / 1e3,
            kv_bytes=pl.col("batch_size") * pl.col("kv_cache_size") * _ATTENTION_KV_BYTES_PER_TOKEN,
        )
        .with_columns(bandwidth_fraction=pl.col("kv_bytes") / pl.col("seconds") / peak_bps)
    )


def _weight_streaming(linear: pl.DataFrame) -> pl.Series:
    return linear.filter(pl.col("num_tokens") <= STREAMING_MAX_TOKENS)["bandwidth_fraction"]


def _kv_streaming(attention: pl.DataFrame) -> pl.Series:
    return attention.filter(pl.col("kv_bytes") >= KV_MIN_BYTES)["bandwidth_fraction"]


def streaming_medians() -> dict[str, float]:
    """Median bandwidth fraction of weight streaming and of KV streaming, apart."""
    return {
        "weights": float(_weight_streaming(linear_layer_samples()).median()),
        "kv": float(_kv_streaming(decode_attention_samples()).median()),
    }


@functools.cache
def kernel_efficiency() -> KernelEfficiency:
    """``mfu`` and ``mbu`` of a current engine's kernels (the medians described above)."""
    linear = linear_layer_samples()
    compute = linear.filter(pl.col("num_tokens") >= COMPUTE_MIN_TOKENS)["flops_fraction"]
    streaming = np.concatenate(
        [_weight_streaming(linear).to_numpy(), _kv_streaming(decode_attention_samples()).to_numpy()]
    )
    return KernelEfficiency(
        mfu=round(float(compute.median()), 2),
        mbu=round(float(np.median(streaming)), 2),
        compute_samples=compute.len(),
        streaming_samples=streaming.size,
    )
