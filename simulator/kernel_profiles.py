"""Kernel efficiencies of a current serving engine, read off measured per-operator GPU profiles.

The colocated mode models engines like vLLM 0.19 (CUDA graphs, FlashAttention-class decode
kernels). Whole-engine benchmarks of older vLLM versions (Argonne's, :mod:`simulator.
engine_calibration`) mix their kernels' speed with their host overhead, so the kernels' speed
is taken from timings of the kernels themselves, one transformer layer's operators at a time:

- Vidur's profiler (Agrawal et al., MLSys 2024; ``data/perf/vidur/``, MIT): A100-80GB and H100,
  Llama-2-7B and Llama-3-8B layers, and FlashAttention decode on A100-80GB (70B-class layer);
- LLMServingSim's profiler (``data/perf/llmservingsim/``, MIT): RTX 4090 and RTX PRO 6000,
  Llama-3.1-8B layers, vLLM's own kernels.

From each GPU's timings:

- **weight streaming** (``mbu`` of the projections and FFN): the four linear operators of a
  Llama layer (QKV, output, gate-up, down) at TP 1 and at most :data:`STREAMING_MAX_TOKENS`
  tokens a pass, where they do at most 16 FLOPs per weight byte (memory-bound on every GPU
  here): weight bytes / time / peak bandwidth;
- **KV streaming** (``mbu`` of the attention): the decode attention kernel over working sets of
  at least :data:`KV_MIN_BYTES` (below it the kernel's fixed ~10-15 us launch floor
  dominates): KV bytes / time / peak bandwidth;
- **compute** (``mfu``): the same linear operators at :data:`COMPUTE_MIN_TOKENS` tokens or
  more: FLOPs / time / peak dense BF16 FLOPS.

The roofline model has one ``mbu`` for both kinds of streaming: the median of all of a GPU's
memory-bound samples. A GPU with profiles of its own gets its own medians; every other GPU (the
derived ones) gets the medians of the datacenter GPUs Vidur profiled, pooled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator.hardware import BF16_BYTES, GPUS, MODELS, ModelSpec
from simulator.paths import (
    LLMSERVINGSIM_ATTENTION_CSVS,
    LLMSERVINGSIM_LINEAR_CSVS,
    VIDUR_ATTENTION_CSV,
    VIDUR_LINEAR_CSVS,
)

#: Most tokens a pass of the linear operators may carry to count as weight streaming.
STREAMING_MAX_TOKENS = 16
#: Fewest tokens a pass of the linear operators must carry to count as compute-bound.
COMPUTE_MIN_TOKENS = 1024
#: Smallest decode-attention working set (KV bytes of one layer on one GPU) that counts.
KV_MIN_BYTES = 256 * 2**20
#: The GPUs whose pooled medians serve every GPU without profiles of its own.
DATACENTER_GPUS = tuple(sorted({gpu for gpu, _ in VIDUR_LINEAR_CSVS}))
#: Vidur's attention table: a 70B-class layer (Llama-2-70B's 8 KV heads of 128) at TP 2 on
#: A100-80GB.
_VIDUR_ATTENTION = ("A100-80GB", "Llama-2-70B", 2)
_VIDUR_LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")


@dataclass(frozen=True)
class KernelEfficiency:
    """Median kernel efficiencies of a GPU and where they come from.

    Attributes
    ----------
    mfu, mbu : float
        Medians, rounded to 0.01.
    measured_on : tuple of str
        The GPUs whose timings the medians are taken over: the GPU itself, or the datacenter
        pool for a GPU without profiles.
    compute_samples, streaming_samples : int
        Timings behind each median.
    """

    mfu: float
    mbu: float
    measured_on: tuple[str, ...]
    compute_samples: int
    streaming_samples: int


def _with_fractions(samples: pl.DataFrame) -> pl.DataFrame:
    """Achieved shares of the spec sheet's bandwidth and (where FLOPs are known) BF16 FLOPS."""
    peak_bps = pl.col("gpu").replace_strict(
        {g: s.memory_bandwidth_gbps * 1e9 for g, s in GPUS.items()}
    )
    fractions = [(pl.col("bytes") / pl.col("seconds") / peak_bps).alias("bandwidth_fraction")]
    if "flops" in samples.columns:
        peak_flops = pl.col("gpu").replace_strict(
            {g: s.dense_bf16_tflops * 1e12 for g, s in GPUS.items()}
        )
        fractions.append((pl.col("flops") / pl.col("seconds") / peak_flops).alias("flops_fraction"))
    return samples.with_columns(fractions)


def _vidur_linear(gpu: str, model: str, path) -> pl.DataFrame:
    raw = pl.read_csv(path).filter(pl.col("num_tensor_parallel_workers") == 1)
    hidden, heads, kv_heads = pl.col("n_embd"), pl.col("n_head"), pl.col("n_kv_head")
    params = hidden * (heads + 2 * kv_heads) * (hidden // heads) + hidden * hidden
    params += 3 * hidden * pl.col("n_expanded_embd")
    return raw.select(
        gpu=pl.lit(gpu),
        model=pl.lit(model),
        num_tokens="num_tokens",
        seconds=pl.sum_horizontal(pl.col(f"time_stats.{op}.median") for op in _VIDUR_LINEAR_OPS)
        / 1e3,
        params=params,
    )


def _llmservingsim_linear(gpu: str, model: str, path) -> pl.DataFrame:
    spec: ModelSpec = MODELS[model]
    return (
        pl.read_csv(path)
        .group_by("tokens")
        .agg(pl.col("time_us").sum(), pl.len().alias("ops"))
        .filter(pl.col("ops") == 4)  # the four linear operators, all timed
        .sort("tokens")
        .select(
            gpu=pl.lit(gpu),
            model=pl.lit(model),
            num_tokens="tokens",
            seconds=pl.col("time_us") / 1e6,
            params=pl.lit(spec.attention_params_per_layer + spec.expert_params),
        )
    )


@functools.cache
def linear_layer_samples() -> pl.DataFrame:
    """One row per profiled pass of a layer's four linear operators at TP 1: ``gpu``,
    ``model``, ``num_tokens``, ``seconds`` (the operators' times summed), ``bytes`` (their
    weights), ``flops``, and the achieved ``bandwidth_fraction`` and ``flops_fraction``."""
    frames = [_vidur_linear(g, m, p) for (g, m), p in VIDUR_LINEAR_CSVS.items()]
    frames += [_llmservingsim_linear(g, m, p) for (g, m), p in LLMSERVINGSIM_LINEAR_CSVS.items()]
    samples = pl.concat(frames, how="vertical_relaxed").with_columns(
        bytes=pl.col("params") * BF16_BYTES,
        flops=2 * pl.col("params") * pl.col("num_tokens"),
    )
    return _with_fractions(samples.drop("params"))


@functools.cache
def decode_attention_samples() -> pl.DataFrame:
    """One row per profiled decode-attention kernel (one layer, every request one new token):
    ``gpu``, ``batch_size``, ``kv_tokens`` (per request), ``seconds``, ``bytes`` (KV read) and
    the achieved ``bandwidth_fraction``."""
    gpu, model, tp = _VIDUR_ATTENTION
    vidur = (
        pl.read_csv(VIDUR_ATTENTION_CSV)
        .filter(~pl.col("is_prefill"))
        .select(
            gpu=pl.lit(gpu),
            batch_size="batch_size",
            kv_tokens="kv_cache_size",
            seconds=pl.col("time_stats.attn_decode.median") / 1e3,
            bytes_per_token=pl.lit(_kv_bytes_per_token_and_layer(model, tp)),
        )
    )
    frames = [vidur]
    for (gpu, model), path in LLMSERVINGSIM_ATTENTION_CSVS.items():
        frames.append(
            pl.read_csv(path)
            .filter(pl.col("prefill_chunk") == 0)
            .select(
                gpu=pl.lit(gpu),
                batch_size="n_decode",
                kv_tokens="kv_decode",
                seconds=pl.col("time_us") / 1e6,
                bytes_per_token=pl.lit(_kv_bytes_per_token_and_layer(model, tp=1)),
            )
        )
    samples = pl.concat(frames, how="vertical_relaxed").with_columns(
        bytes=pl.col("batch_size") * pl.col("kv_tokens") * pl.col("bytes_per_token")
    )
    return _with_fractions(samples.drop("bytes_per_token"))


def _kv_bytes_per_token_and_layer(model: str, tp: int) -> int:
    """KV bytes one token holds in one layer on one GPU (KV heads split over up to ``tp``)."""
    spec = MODELS[model]
    return spec.kv_bytes_per_token // spec.num_layers // min(tp, spec.num_kv_heads)


def _weight_streaming(linear: pl.DataFrame) -> pl.DataFrame:
    return linear.filter(pl.col("num_tokens") <= STREAMING_MAX_TOKENS)


def _kv_streaming(attention: pl.DataFrame) -> pl.DataFrame:
    return attention.filter(pl.col("bytes") >= KV_MIN_BYTES)


def streaming_medians(gpus: tuple[str, ...]) -> dict[str, float]:
    """Median bandwidth fraction of weight streaming and of KV streaming on ``gpus``, apart
    (NaN where they have no such timing)."""
    on = pl.col("gpu").is_in(gpus)
    weights = _weight_streaming(linear_layer_samples()).filter(on)["bandwidth_fraction"]
    kv = _kv_streaming(decode_attention_samples()).filter(on)["bandwidth_fraction"]
    return {"weights": float(weights.median() or np.nan), "kv": float(kv.median() or np.nan)}


@functools.cache
def kernel_efficiency(gpu: str) -> KernelEfficiency:
    """``mfu`` and ``mbu`` of a current engine's kernels on ``gpu``: medians of its own
    timings if it has any, else of the datacenter pool's."""
    linear = linear_layer_samples()
    measured_on = (gpu,) if gpu in set(linear["gpu"]) else DATACENTER_GPUS
    linear = linear.filter(pl.col("gpu").is_in(measured_on))
    attention = decode_attention_samples().filter(pl.col("gpu").is_in(measured_on))
    compute = linear.filter(pl.col("num_tokens") >= COMPUTE_MIN_TOKENS)["flops_fraction"]
    streaming = pl.concat(
        [
            _weight_streaming(linear)["bandwidth_fraction"],
            _kv_streaming(attention)["bandwidth_fraction"],
        ]
    )
    return KernelEfficiency(
        mfu=round(float(compute.median()), 2),
        mbu=round(float(streaming.median()), 2),
        measured_on=measured_on,
        compute_samples=compute.len(),
        streaming_samples=streaming.len(),
    )
