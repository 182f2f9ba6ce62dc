"""Replay measured vLLM benchmark runs through the colocated simulator and compare.

A bench folder (the layout of LLMServingSim's ``bench/examples``) holds ``meta.json`` (engine
settings and hardware), ``requests.jsonl`` (per request: tokens in and out, the frontend's
``arrival_time`` and the engine's ``queued_ts``, ``first_token_ts`` and ``last_token_ts``) and
``timeseries.csv`` (vLLM's per-second ``gen_throughput`` and ``waiting``). The replay feeds the
same requests at the same instants (``arrival_time``, when the frontend received each one) to
one engine with the run's GPU, model, TP, data-parallel size and scheduler settings. vLLM's
engine loop takes requests in only between steps, at ``queued_ts``; the simulated engine does
the same, and both sides are measured the same way:

- TTFT = first token - queued; TPOT = (last - first token) / (output tokens - 1);
- peak decode tokens/s = the largest one-second count of generated tokens (vLLM counts every
  sampled token, first tokens included);
- max waiting = the largest one-second value of the waiting-queue gauge (vLLM samples it once
  per second; the simulator averages it over each second).

Scheduler settings come from ``meta.json``: ``engine_kwargs``, then ``kv_cache`` and
``resolved_config`` where the run recorded them. Runs that did not record the resolved flags
(prefix caching, async scheduling, full-sequence admission) get vLLM 0.19's resolved defaults,
:class:`simulator.cluster.EngineConfig`'s own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from simulator.cluster import COLOCATED, ColocatedClusterSpec, EngineConfig, PoolSpec
from simulator.engine import _ColocatedSimulation
from simulator.metrics import Bins, instance_samples
from simulator.paths import VLLM_BENCH_DIR
from simulator.traces import REQUEST_SCHEMA, validate_requests

#: Hugging Face model ids of the bench runs, mapped onto :data:`simulator.hardware.MODELS`.
BENCH_MODELS = {
    "meta-llama/Llama-3.1-8B": "Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B": "Llama-3.1-70B",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "Qwen3-30B-A3B",
    "Qwen/Qwen3-30B-A3B": "Qwen3-30B-A3B",
    "Qwen/Qwen3-32B": "Qwen3-32B",
}
#: GPU names as they appear in ``meta.json`` (``hardware.device_name``) or in a folder name.
BENCH_GPUS = {
    "NVIDIA GeForce RTX 4090": "RTX-4090",
    "RTX4090": "RTX-4090",
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": "RTX-PRO-6000",
    "RTXPRO6000": "RTX-PRO-6000",
}
METRICS = ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "peak_decode_tps", "max_waiting")


@dataclass(frozen=True)
class BenchRun:
    """One measured run, ready to replay."""

    name: str
    cluster: ColocatedClusterSpec
    requests: pl.DataFrame  # canonical request frame, arrivals from the first queued_ts
    measured: dict[str, float]


def load_bench_run(folder: Path) -> BenchRun:
    """Read a bench folder into the cluster it ran on, its requests and its measured metrics.

    Raises
    ------
    ValueError
        Naming the file and field when the model or GPU is unknown or a field is missing.
    """
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    kwargs = meta.get("engine_kwargs", {})
    model = BENCH_MODELS.get(meta.get("model", ""))
    if model is None:
        raise ValueError(
            f"{meta_path}: model {meta.get('model')!r} is not one of {list(BENCH_MODELS)}"
        )
    device = meta.get("hardware", {}).get("device_name") or folder.name.split("_", 1)[0]
    gpu = BENCH_GPUS.get(device)
    if gpu is None:
        raise ValueError(f"{meta_path}: GPU {device!r} is not one of {list(BENCH_GPUS)}")
    cache = meta.get("kv_cache", {})
    scheduler = meta.get("resolved_config", {}).get("scheduler_config", {})
    defaults = EngineConfig()
    engine = EngineConfig(
        max_num_seqs=kwargs.get("max_num_seqs") or 256,
        max_num_batched_tokens=kwargs.get("max_num_batched_tokens") or 2048,
        block_size=cache.get("block_size") or 16,
        num_gpu_blocks=cache.get("num_gpu_blocks"),
        gpu_memory_utilization=cache.get("gpu_memory_utilization") or 0.9,
        data_parallel_size=kwargs.get("data_parallel_size") or 1,
        enable_expert_parallel=bool(kwargs.get("enable_expert_parallel")),
        enable_prefix_caching=cache.get("enable_prefix_caching", defaults.enable_prefix_caching),
        async_scheduling=scheduler.get("async_scheduling", defaults.async_scheduling),
        scheduler_reserve_full_isl=scheduler.get(
            "scheduler_reserve_full_isl", defaults.scheduler_reserve_full_isl
        ),
    )
    cluster = ColocatedClusterSpec(
        model=model,
        pool=PoolSpec(COLOCATED, gpu, tp=kwargs.get("tensor_parallel_size") or 1, count=1),
        engine=engine,
    )
    raw = pl.read_ndjson(folder / "requests.jsonl").sort("arrival_time")
    requests = pl.DataFrame(
        {
            "arrival_s": raw["arrival_time"] - raw["arrival_time"].min(),
            "input_tokens": raw["input_toks"],
            "output_tokens": raw["output_toks"],
            "prefix_hashes": [[] for _ in range(raw.height)],
        },
        schema=REQUEST_SCHEMA,
    )
    ttft = (raw["first_token_ts"] - raw["queued_ts"]).to_numpy()
    tpot = tpot_per_request(raw["first_token_ts"], raw["last_token_ts"], raw["output_toks"])
    series = pl.read_csv(folder / "timeseries.csv")
    measured = {
        "ttft_p50_s": _quantile(ttft, 0.5),
        "ttft_p99_s": _quantile(ttft, 0.99),
        "tpot_p50_s": _quantile(tpot, 0.5),
        "peak_decode_tps": float(series["gen_throughput"].max()),
        "max_waiting": float(series["waiting"].max()),
    }
    return BenchRun(folder.name, cluster, requests, measured)


def simulated_metrics(run: BenchRun) -> dict[str, float]:
    """Replay ``run`` on its simulated engine and measure it as the real run was measured."""
    sim = _ColocatedSimulation(validate_requests(run.requests), run.cluster)
    end_s = sim.run()
    bins = Bins.covering(datetime(2024, 1, 1, tzinfo=UTC), 1.0, end_s)
    samples = instance_samples(sim.recorder, sim.infos, bins, run.name).sort("ts")
    table = sim.table
    queued = {rid: at for instance in sim.instances for rid, at in instance.queued_s.items()}
    first = np.array(table.first_token_s)
    ttft = first - np.array([queued[rid] for rid in range(table.size)])
    first_tokens = np.bincount(first.astype(np.int64), minlength=samples.height)[: samples.height]
    generated = samples["decode_tps"].to_numpy() + first_tokens
    output = pl.Series(table.output_tokens)
    return {
        "ttft_p50_s": _quantile(ttft, 0.5),
        "ttft_p99_s": _quantile(ttft, 0.99),
        "tpot_p50_s": _quantile(
            tpot_per_request(pl.Series(table.first_token_s), pl.Series(table.finish_s), output), 0.5
        ),
        "peak_decode_tps": float(generated.max()),
        "max_waiting": float(samples["queue_depth"].max()),
    }


def compare(run: BenchRun) -> dict[str, object]:
    """Measured vs simulated metrics of one run with relative errors (the CLI's JSON row)."""
    simulated = simulated_metrics(run)
    row: dict[str, object] = {"name": run.name}
    for metric in METRICS:
        measured, sim = run.measured[metric], simulated[metric]
        rel_err = (sim - measured) / measured if measured else math.nan
        row[metric] = {"measured": measured, "simulated": sim, "rel_err": rel_err}
    return row


def bench_folders(bench_dir: Path = VLLM_BENCH_DIR) -> list[Path]:
    """Run folders under ``bench_dir`` (those holding a ``meta.json``), sorted by name; the
    directory itself when it is one run."""
    if (bench_dir / "meta.json").exists():
        return [bench_dir]
    folders = sorted(p.parent for p in bench_dir.glob("*/meta.json"))
    if not folders:
        raise ValueError(f"{bench_dir}: no run folder (with meta.json) found")
    return folders


def fidelity_report(bench_dir: Path = VLLM_BENCH_DIR) -> dict[str, list[dict[str, object]]]:
    """``{"runs": [...]}``: :func:`compare` for every run under ``bench_dir``."""
    return {"runs": [compare(load_bench_run(folder)) for folder in bench_folders(bench_dir)]}


def tpot_per_request(first: pl.Series, last: pl.Series, output_tokens: pl.Series) -> np.ndarray:
    """Per-request time per output token after the first; requests of one token have none."""
    keep = (output_tokens > 1).to_numpy()
    span = (last - first).to_numpy()[keep]
    return span / (output_tokens.to_numpy()[keep] - 1)


def _quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile, numpy's default (what pandas and most bench scripts use)."""
    return float(np.quantile(np.asarray(values, dtype=float), q))
