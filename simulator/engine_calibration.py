"""Efficiencies of a modern single-GPU serving engine: its kernels' speed and its per-pass cost.

The Splitwise fit (:mod:`simulator.calibration`) describes 2023-era 70B passes at TP 2-8, whose
steps carry ~24 ms of fixed cost (TP collectives, launches without CUDA graphs). A single-GPU
vLLM engine with CUDA graphs pays far less per pass, so the colocated (vLLM-style) mode has its
own efficiencies, from two sources, neither of them the runs it is validated against:

- ``mfu`` and ``mbu``: the kernels' own speed on each GPU, from per-operator timings
  (:mod:`simulator.kernel_profiles`);
- ``step_overhead_s``: what a whole engine adds per pass, fitted on Argonne's
  LLM-Inference-Bench (Chitty-Venkata et al., SC'24 workshops, BSD-3): vLLM on one A100-40GB
  (Polaris) or one H100-SXM, Llama-2-7B, Llama-3-8B and Mistral-7B, batch 1-64, input = output
  length 128-2048 (``data/vllm_bench/argonne_vllm_1gpu.csv``).

Each Argonne point is the wall time of a whole offline batch: prefill of ``B`` prompts of ``L``
tokens (packed into passes of at most :data:`PREFILL_PASS_TOKENS`), then ``L - 1`` decode steps
at batch ``B`` whose KV grows from ``B * L`` to ``B * 2L`` (summed by a midpoint rule: the step
cost is linear in KV, so 16 nodes are exact to well under 1%).

Points whose final KV (``B * 2L``) exceeds the GPU's KV capacity are dropped: vLLM then
serialises or preempts, which a per-pass fit cannot describe. Configurations are split into
training and held-out parts with the same fraction and seed as the Splitwise fit; the overhead
is solved by non-negative least squares on relative error over the training part. The
all-reduce efficiency is not identifiable from single-GPU runs and is taken from the Splitwise
fit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simulator.calibration import HELD_OUT_FRACTION, SPLIT_SEED, default_efficiency
from simulator.hardware import GPUS, MODELS
from simulator.kernel_profiles import kernel_efficiency
from simulator.paths import ARGONNE_VLLM_CSV
from simulator.perf_model import Efficiency, PerfModel

#: Argonne's hardware and model names, mapped onto :mod:`simulator.hardware` keys.
ARGONNE_GPUS = {"Nvidia A100 GPU": "A100-40GB", "Nvidia H100 GPU": "H100-SXM"}
ARGONNE_MODELS = {
    "meta-llama/Meta-Llama-3-8B": "Llama-3.1-8B",  # same architecture as Llama-3-8B
    "meta-llama/Llama-2-7b-hf": "Llama-2-7B",
    "mistralai/Mistral-7B-v0.1": "Mistral-7B",
}
#: Most prompt tokens per prefill pass (vLLM's ``max_num_batched_tokens`` of that era).
PREFILL_PASS_TOKENS = 8192
#: Midpoint nodes over the decode phase.
DECODE_NODES = 16
#: Share of memory vLLM may use (its ``gpu_memory_utilization`` default).
MEMORY_FRACTION = 0.9

_UNIT = Efficiency(mfu=1.0, mbu=1.0, link_util=1.0, step_overhead_s=0.0)


@dataclass(frozen=True)
class EngineCalibration:
    """The fitted per-pass overhead and every point with its prediction.

    Attributes
    ----------
    step_overhead_s : float
        Fitted on the training part.
    points : pl.DataFrame
        ``gpu``, ``model``, ``length``, ``batch_size``, ``held_out``, ``measured_s``,
        ``predicted_s``, ``rel_error``.
    """

    step_overhead_s: float
    points: pl.DataFrame

    def efficiency(self, gpu: str) -> Efficiency:
        """The engine's efficiencies on ``gpu``: its kernels' ``mfu`` and ``mbu``
        (:func:`simulator.kernel_profiles.kernel_efficiency`), the fitted overhead, and
        ``link_util`` from the Splitwise fit."""
        kernels = kernel_efficiency(gpu)
        return Efficiency(
            mfu=kernels.mfu,
            mbu=kernels.mbu,
            link_util=default_efficiency().link_util,
            step_overhead_s=self.step_overhead_s,
        )

    def error_summary(self) -> pl.DataFrame:
        """Mean, p90 and max absolute relative error, training vs held-out."""
        return (
            self.points.group_by("held_out")
            .agg(
                n=pl.len(),
                mean_rel_error=pl.col("rel_error").mean(),
                p90_rel_error=pl.col("rel_error").quantile(0.9, interpolation="linear"),
                max_rel_error=pl.col("rel_error").max(),
            )
            .sort("held_out")
        )


def load_argonne_points(path: Path = ARGONNE_VLLM_CSV) -> pl.DataFrame:
    """Median batch latency per configuration whose KV fits, with the held-out flag."""
    raw = pl.read_csv(path)
    points = (
        raw.select(
            gpu=pl.col("Hardware").replace_strict(ARGONNE_GPUS),
            model=pl.col("Model").replace_strict(ARGONNE_MODELS),
            length=pl.col("Input Output Length"),
            batch_size=pl.col("Batch Size"),
            latency_s=pl.col("Latency"),
        )
        .group_by("gpu", "model", "length", "batch_size")
        .agg(measured_s=pl.col("latency_s").median())
        .sort("gpu", "model", "length", "batch_size")
    )
    fits = [
        batch * 2 * length
        <= PerfModel(MODELS[model], GPUS[gpu], 1, _UNIT).kv_capacity_tokens(MEMORY_FRACTION)
        for gpu, model, length, batch in points.select(
            "gpu", "model", "length", "batch_size"
        ).iter_rows()
    ]
    points = points.filter(pl.Series(fits))
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = np.zeros(points.height, dtype=bool)
    held_out[rng.permutation(points.height)[: round(HELD_OUT_FRACTION * points.height)]] = True
    return points.with_columns(held_out=pl.Series(held_out))


def _passes(points: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ideal compute and memory seconds of each kernel group of every (weighted) pass (one
    row per pass), the point each pass belongs to, and its weight (the real passes it stands
    for)."""
    compute, memory, owner, weight = [], [], [], []
    for row, (gpu, model, length, batch) in enumerate(
        points.select("gpu", "model", "length", "batch_size").iter_rows()
    ):
        perf = PerfModel(MODELS[model], GPUS[gpu], 1, _UNIT)
        per_pass = max(1, PREFILL_PASS_TOKENS // length)
        full, rest = divmod(batch, per_pass)
        works = [(perf.prefill_work([length] * per_pass, [0] * per_pass), full)]
        if rest:
            works.append((perf.prefill_work([length] * rest, [0] * rest), 1))
        steps = length - 1
        for node in range(DECODE_NODES):
            generated = (node + 0.5) * steps / DECODE_NODES
            works.append(
                (perf.decode_work(batch, round(batch * (length + generated))), steps / DECODE_NODES)
            )
        for work, count in works:
            c, m, _ = perf.ideal_seconds(work)
            compute.append(c)
            memory.append(m)
            owner.append(row)
            weight.append(count)
    return np.array(compute), np.array(memory), np.array(owner), np.array(weight, dtype=float)


def fit_engine_efficiency(points: pl.DataFrame) -> EngineCalibration:
    """Fit the per-pass overhead on the points not held out, each point's kernels at its GPU's
    ``mfu`` and ``mbu`` (:func:`simulator.kernel_profiles.kernel_efficiency`)."""
    compute, memory, owner, weight = _passes(points)
    kernels = [kernel_efficiency(gpu) for gpu in points["gpu"]]
    mfu = np.array([k.mfu for k in kernels])[owner, None]
    mbu = np.array([k.mbu for k in kernels])[owner, None]
    n_points = points.height
    pass_kernel_s = np.maximum(compute / mfu, memory / mbu).sum(axis=1)
    roofline = np.bincount(owner, weights=weight * pass_kernel_s, minlength=n_points)
    passes_per_point = np.bincount(owner, weights=weight, minlength=n_points)
    measured = points["measured_s"].to_numpy()
    train = ~points["held_out"].to_numpy()
    y, r, n = measured[train], roofline[train], passes_per_point[train]
    x = n / y
    overhead = max(0.0, float(x @ ((y - r) / y) / (x @ x)))
    predicted = roofline + passes_per_point * overhead
    points = points.with_columns(
        predicted_s=pl.Series(predicted),
        rel_error=pl.Series(np.abs(predicted / measured - 1.0)),
    )
    return EngineCalibration(step_overhead_s=overhead, points=points)


@functools.cache
def default_engine_calibration() -> EngineCalibration:
    """The fit on the shipped Argonne data, once per process."""
    return fit_engine_efficiency(load_argonne_points())


def engine_efficiency(gpu: str) -> Efficiency:
    """Efficiencies of a single-GPU vLLM-class engine on ``gpu``: the colocated mode's
    default."""
    return default_engine_calibration().efficiency(gpu)
