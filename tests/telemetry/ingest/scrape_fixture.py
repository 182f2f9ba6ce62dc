"""Write ``vllm_dcgm_scrapes/``: raw scrapes of a vLLM 0.11 deployment and its DCGM exporter.

What a user gets from ``curl POD:8000/metrics`` and ``curl NODE:9400/metrics`` every 15 s,
saved as ``<target>-<unix seconds>.prom``: two ``vllm serve`` pods (one engine each, two H100s
each, tensor parallel) on an 8-GPU node whose other four GPUs no pod holds, and NVIDIA's DCGM
exporter with the GPU Operator's default field list and Kubernetes pod mapping. Every series
they expose by default is here, under its real name, labels and value format:

- vLLM 0.11's ``PrometheusStatLogger`` (``vllm/v1/metrics/loggers.py``): the scheduler gauges,
  the token, prefix-cache, preemption and finished-request counters, the fourteen request and
  step histograms with their own buckets (``time_per_output_token_seconds`` is still on by
  default in 0.11), ``cache_config_info``; written as the Python client writes them (labels
  sorted, so ``le`` sits between ``engine`` and ``model_name``; a ``_created`` gauge beside
  each counter and histogram; floats as ``1.0``), plus the client's process and GC collectors
  and the API server's HTTP metrics (prometheus-fastapi-instrumentator's defaults);
- dcgm-exporter's ``etc/dcp-metrics-included.csv`` fields, integers for integer fields and
  ``%f`` for doubles (``internal/pkg/collector/gpu_collector.go``), labels ``gpu``, ``UUID``,
  ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, ``DCGM_FI_DRIVER_VERSION``, the
  XID error's ``err_code``/``err_msg``, and ``container``, ``namespace``, ``pod`` (empty for a
  GPU no pod holds).

Values come from a seeded draw of requests, consistent across scrapes (counters and buckets
only grow). The files are committed; ``test_vllm_dcgm_scrapes`` checks they are what this
writes, so ``python -m tests.telemetry.ingest.scrape_fixture`` rewrites them after a change.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import numpy as np

from simulator.prometheus_endpoint import client_float, dcgm_value, label_text

FOLDER = Path(__file__).with_name("vllm_dcgm_scrapes")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
MAX_MODEL_LEN = 8192
PODS = ("llama-8b-6f7d9c5b8-4kq2m", "llama-8b-6f7d9c5b8-9wz7t")
GPUS_PER_POD = 2
NODE_GPUS = 8
NODE = "gpu-node-a17"
DCGM_TARGET = "nvidia-dcgm-exporter-h7k2x"
NAMESPACE = "llm"
#: PCI buses of the node's eight GPUs.
BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)
#: First scrape (2025-03-01T00:00:03Z); each target is scraped every 15 s, a few s apart.
FIRST_S, SCRAPE_S, SCRAPES = 1740787203, 15, 4
OFFSET_S = {PODS[0]: 0, PODS[1]: 2, DCGM_TARGET: 6}
#: Intervals of traffic the servers had served before the first scrape.
WARM_INTERVALS = 20

TTFT_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)
TTFT_S += (5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5)
ITL_S += (10.0, 20.0, 40.0, 80.0)
REQUEST_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
REQUEST_S += (120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ITERATION_TOKENS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
PARAMS_N = (1, 2, 5, 10, 20)


def one_two_five(limit: int) -> tuple[int, ...]:
    """vLLM's 1-2-5 buckets up to ``limit`` (the model's maximum length)."""
    out, scale = [], 1
    while scale <= limit:
        out += [m * scale for m in (1, 2, 5) if m * scale <= limit]
        scale *= 10
    return tuple(out)


TOKENS = one_two_five(MAX_MODEL_LEN)
#: vLLM's histograms: name -> (buckets, what each observation is).
HISTOGRAMS = {
    "vllm:request_prompt_tokens": (TOKENS, "prompt"),
    "vllm:request_generation_tokens": (TOKENS, "output"),
    "vllm:iteration_tokens_total": (ITERATION_TOKENS, "step"),
    "vllm:request_max_num_generation_tokens": (TOKENS, "max_tokens"),
    "vllm:request_params_n": (PARAMS_N, "n"),
    "vllm:request_params_max_tokens": (TOKENS, "max_tokens"),
    "vllm:time_to_first_token_seconds": (TTFT_S, "ttft"),
    "vllm:time_per_output_token_seconds": (ITL_S, "itl"),
    "vllm:inter_token_latency_seconds": (ITL_S, "itl"),
    "vllm:e2e_request_latency_seconds": (REQUEST_S, "e2e"),
    "vllm:request_queue_time_seconds": (REQUEST_S, "queue"),
    "vllm:request_inference_time_seconds": (REQUEST_S, "inference"),
    "vllm:request_prefill_time_seconds": (REQUEST_S, "prefill"),
    "vllm:request_decode_time_seconds": (REQUEST_S, "decode"),
}


class Served:
    """What one engine has served so far: counter totals and histogram buckets and sums."""

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.buckets = {name: np.zeros(len(b) + 1) for name, (b, _) in HISTOGRAMS.items()}
        self.sums = dict.fromkeys(HISTOGRAMS, 0.0)

    def count(self, name: str, amount: float) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + amount

    def observe(self, name: str, values: np.ndarray) -> None:
        bounds = np.array([*HISTOGRAMS[name][0], math.inf])
        self.buckets[name] += (values[:, None] <= bounds[None, :]).sum(axis=0)
        self.sums[name] += float(values.sum())

    def interval(self, rng: np.random.Generator) -> None:
        """Fifteen seconds of chat traffic on one engine."""
        n = int(rng.integers(30, 46))
        prompt = np.clip(rng.lognormal(6.6, 0.7, n).round(), 16, 7000)
        output = np.clip(rng.lognormal(5.0, 0.8, n).round(), 1, 1024)
        queue = rng.exponential(0.02, n)
        prefill = prompt * 4e-5 + rng.uniform(0.01, 0.03, n)
        itl = rng.lognormal(np.log(0.021), 0.15, n)
        decode = (output - 1) * itl
        observations = {
            "prompt": prompt,
            "output": output,
            "step": np.clip(rng.normal(40, 25, 700).round(), 1, 8192),
            "max_tokens": np.full(n, 1024.0),
            "n": np.ones(n),
            "ttft": queue + prefill,
            "itl": np.repeat(itl, (output - 1).astype(int)),
            "e2e": queue + prefill + decode,
            "queue": queue,
            "inference": prefill + decode,
            "prefill": prefill,
            "decode": decode,
        }
        for name, (_, what) in HISTOGRAMS.items():
            self.observe(name, observations[what])
        self.count("vllm:prompt_tokens", prompt.sum())
        self.count("vllm:generation_tokens", output.sum())
        self.count("vllm:prefix_cache_queries", prompt.sum())
        self.count("vllm:prefix_cache_hits", (prompt * 0.35).round().sum())
        self.count("vllm:num_preemptions", 0.0)
        self.count("stop", float((output < 1024).sum()))
        self.count("length", float((output >= 1024).sum()))
        self.count("abort", 0.0)
        self.count("http", float(n))


def _family(name: str, kind: str, text: str, lines: list[str]) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *lines]


def _created(base: str, text: str, labelsets: list[dict], at: float) -> list[str]:
    """The Python client's ``_created`` gauge beside a counter or histogram."""
    lines = [f"{base}_created{label_text(**labels)} {client_float(at)}" for labels in labelsets]
    return _family(f"{base}_created", "gauge", text, lines)


def _histogram(name, text, labels, bounds, counts, total, created) -> list[str]:
    lines = [
        f"{name}_bucket{label_text(**dict(sorted({**labels, 'le': client_float(le)}.items())))} "
        f"{client_float(n)}"
        for le, n in zip((*bounds, math.inf), counts, strict=True)
    ]
    lines += [
        f"{name}_count{label_text(**labels)} {client_float(counts[-1])}",
        f"{name}_sum{label_text(**labels)} {client_float(total)}",
    ]
    return _family(name, "histogram", text, lines) + _created(name, text, [labels], created)


def vllm_scrape(served: Served, k: int, rng: np.random.Generator, started: float) -> str:
    """One ``/metrics`` answer of a ``vllm serve`` pod after ``k`` intervals."""
    engine = {"engine": "0", "model_name": MODEL}
    out: list[str] = []
    out += _family(
        "python_gc_objects_collected_total",
        "counter",
        "Objects the collector freed, by generation.",
        [
            f'python_gc_objects_collected_total{{generation="{g}"}} {client_float(v * (k + 1))}'
            for g, v in (("0", 18120.0), ("1", 2307.0), ("2", 410.0))
        ],
    )
    out += _family(
        "python_gc_objects_uncollectable_total",
        "counter",
        "Objects the collector could not free.",
        [f'python_gc_objects_uncollectable_total{{generation="{g}"}} 0.0' for g in "012"],
    )
    out += _family(
        "python_gc_collections_total",
        "counter",
        "Collections run, by generation.",
        [
            f'python_gc_collections_total{{generation="{g}"}} {client_float(v * (k + 1))}'
            for g, v in (("0", 1204.0), ("1", 109.0), ("2", 6.0))
        ],
    )
    out += _family(
        "python_info",
        "gauge",
        "Interpreter version.",
        [
            'python_info{implementation="CPython",major="3",minor="12",patchlevel="11",'
            'version="3.12.11"} 1.0'
        ],
    )
    process = [
        ("process_virtual_memory_bytes", "gauge", "Virtual memory (B).", 2.4581668864e10),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory (B).",
            3.391684608e09,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Process start (Unix s).",
            started,
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "CPU time used (s).",
            812.4 + 14.6 * k,
        ),
        ("process_open_fds", "gauge", "Open file descriptors.", 97.0),
        ("process_max_fds", "gauge", "File descriptor limit.", 1048576.0),
    ]
    for name, kind, text, value in process:
        out += _family(name, kind, text, [f"{name} {client_float(value)}"])
    route = {"handler": "/v1/chat/completions", "method": "POST", "status": "2xx"}
    requests = served.counters["http"]
    out += _family(
        "http_requests_total",
        "counter",
        "HTTP requests by handler, method and status.",
        [f"http_requests_total{label_text(**route)} {client_float(requests)}"],
    )
    out += _created(
        "http_requests",
        "HTTP requests by handler, method and status.",
        [route],
        started + 40,
    )
    for name, per in (("http_request_size_bytes", 3900.0), ("http_response_size_bytes", 1720.0)):
        text = "HTTP body sizes by handler (B)."
        handler = {"handler": "/v1/chat/completions"}
        out += _family(
            name,
            "summary",
            text,
            [
                f"{name}_count{label_text(**handler)} {client_float(requests)}",
                f"{name}_sum{label_text(**handler)} {client_float(requests * per)}",
            ],
        )
        out += _created(name, text, [handler], started + 40)
    latency = served.sums["vllm:e2e_request_latency_seconds"]
    highr = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
    highr += (4.5, 5.0, 7.5, 10.0, 30.0, 60.0)
    e2e = served.buckets["vllm:e2e_request_latency_seconds"]
    spread = np.interp(highr, (0.3, 2.5, 5.0, 10.0, 60.0), (0.0, 0.35, 0.8, 0.97, 1.0)) * e2e[-1]
    out += _histogram(
        "http_request_duration_highr_seconds",
        "Request latency, fine buckets, no labels.",
        {},
        highr,
        [*spread.round(), e2e[-1]],
        latency,
        started + 40,
    )
    coarse = np.interp((0.1, 0.5, 1.0), (0.3, 2.5), (0.0, 0.35)) * e2e[-1]
    out += _histogram(
        "http_request_duration_seconds",
        "Request latency by handler, coarse buckets.",
        {"handler": "/v1/chat/completions", "method": "POST"},
        (0.1, 0.5, 1.0),
        [*coarse.round(), e2e[-1]],
        latency,
        started + 40,
    )
    gauges = [
        (
            "vllm:num_requests_running",
            "Requests in the running batch.",
            float(rng.integers(18, 30)),
        ),
        (
            "vllm:num_requests_waiting",
            "Requests waiting to be scheduled.",
            float(rng.integers(0, 3)),
        ),
        (
            "vllm:kv_cache_usage_perc",
            "KV-cache blocks in use; 1 is full.",
            float(rng.uniform(0.2, 0.45)),
        ),
    ]
    for name, text, value in gauges:
        out += _family(name, "gauge", text, [f"{name}{label_text(**engine)} {client_float(value)}"])
    counters = [
        (
            "vllm:prefix_cache_queries",
            "Tokens looked up in the prefix cache.",
        ),
        ("vllm:prefix_cache_hits", "Tokens found in the prefix cache."),
        ("vllm:num_preemptions", "Requests preempted."),
        ("vllm:prompt_tokens", "Prompt tokens computed."),
        ("vllm:generation_tokens", "Tokens generated."),
    ]
    for name, text in counters:
        value = client_float(served.counters[name])
        out += _family(
            f"{name}_total", "counter", text, [f"{name}_total{label_text(**engine)} {value}"]
        )
        out += _created(name, text, [engine], started + 30)
    text = "Requests finished, by reason."
    reasons = [
        dict(sorted({**engine, "finished_reason": r}.items())) for r in ("stop", "length", "abort")
    ]
    out += _family(
        "vllm:request_success_total",
        "counter",
        text,
        [
            f"vllm:request_success_total{label_text(**labels)} "
            f"{client_float(served.counters[labels['finished_reason']])}"
            for labels in reasons
        ],
    )
    out += _created("vllm:request_success", text, reasons, started + 30)
    for name, (bounds, _) in HISTOGRAMS.items():
        text = f"Histogram of {name.removeprefix('vllm:').replace('_', ' ')}."
        out += _histogram(
            name, text, engine, bounds, served.buckets[name], served.sums[name], started + 30
        )
    config = {
        "block_size": "16",
        "cache_dtype": "auto",
        "calculate_kv_scales": "False",
        "cpu_offload_gb": "0",
        "enable_prefix_caching": "True",
        "engine": "0",
        "gpu_memory_utilization": "0.9",
        "is_attention_free": "False",
        "num_cpu_blocks": "None",
        "num_gpu_blocks": "58964",
        "num_gpu_blocks_override": "None",
        "prefix_caching_hash_algo": "sha256",
        "sliding_window": "None",
        "swap_space": "4",
        "swap_space_bytes": "4294967296",
    }
    out += _family(
        "vllm:cache_config_info",
        "gauge",
        "The engine's cache settings, as labels.",
        [f"vllm:cache_config_info{label_text(**config)} 1.0"],
    )
    return "\n".join(out) + "\n"


#: dcgm-exporter's default DCP field list: (field, type, help, is it an integer field).
DCGM_FIELDS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock (MHz).", True),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock (MHz).", True),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "HBM temperature (C).", True),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (C).", True),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power (W).", False),
    (
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "counter",
        "Energy since boot (mJ).",
        True,
    ),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "PCIe replays.", True),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "Time a kernel ran (%).", True),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Time memory was copied (%).", True),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder busy (%).", True),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder busy (%).", True),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Last XID error.", True),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Free framebuffer (MiB).", True),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Used framebuffer (MiB).", True),
    (
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "counter",
        "NVLink traffic, all lanes.",
        True,
    ),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Rows remapped after uncorrectable errors.",
        True,
    ),
    (
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Rows remapped after correctable errors.",
        True,
    ),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "A row remap failed.", True),
    (
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "gauge",
        "Graphics engine active (ratio).",
        False,
    ),
    (
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "gauge",
        "Tensor pipe active (ratio).",
        False,
    ),
    (
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "gauge",
        "Memory interface active (ratio).",
        False,
    ),
    (
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "gauge",
        "PCIe transmit rate, headers included (in B/s).",
        True,
    ),
    (
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "gauge",
        "PCIe receive rate, headers included (in B/s).",
        True,
    ),
)


def _gpu_values(busy: bool, k: int, rng: np.random.Generator) -> dict[str, float]:
    """One GPU's field values after ``k`` intervals: an H100 80GB HBM3 serving, or idle."""
    util = float(rng.integers(84, 98)) if busy else 0.0
    power = float(rng.uniform(480, 560)) if busy else float(rng.uniform(68, 72))
    used = 73_412.0 if busy else 0.0
    return {
        "DCGM_FI_DEV_SM_CLOCK": 1980.0 if busy else 345.0,
        "DCGM_FI_DEV_MEM_CLOCK": 2619.0,
        "DCGM_FI_DEV_MEMORY_TEMP": 52.0 if busy else 31.0,
        "DCGM_FI_DEV_GPU_TEMP": 61.0 if busy else 29.0,
        "DCGM_FI_DEV_POWER_USAGE": power,
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 8.1e11 + k * 15_000 * power,
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 0.0,
        "DCGM_FI_DEV_GPU_UTIL": util,
        "DCGM_FI_DEV_MEM_COPY_UTIL": util * 0.62,
        "DCGM_FI_DEV_ENC_UTIL": 0.0,
        "DCGM_FI_DEV_DEC_UTIL": 0.0,
        "DCGM_FI_DEV_XID_ERRORS": 0.0,
        "DCGM_FI_DEV_FB_FREE": 81_559.0 - used - 520.0,
        "DCGM_FI_DEV_FB_USED": used,
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": 4.2e10 + (k * 9.1e8 if busy else 0.0),
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": 0.0,
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": 0.0,
        "DCGM_FI_DEV_ROW_REMAP_FAILURE": 0.0,
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": util / 100 * 0.97,
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": float(rng.uniform(0.18, 0.3)) if busy else 0.0,
        "DCGM_FI_PROF_DRAM_ACTIVE": float(rng.uniform(0.45, 0.6)) if busy else 0.0,
        "DCGM_FI_PROF_PCIE_TX_BYTES": float(rng.integers(2, 6) * 1e6) if busy else 4096.0,
        "DCGM_FI_PROF_PCIE_RX_BYTES": float(rng.integers(8, 20) * 1e6) if busy else 8192.0,
    }


def dcgm_scrape(k: int, rng: np.random.Generator) -> str:
    """One ``/metrics`` answer of the node's DCGM exporter after ``k`` intervals."""
    gpus = []
    for gpu in range(NODE_GPUS):
        pod = PODS[gpu // GPUS_PER_POD] if gpu < GPUS_PER_POD * len(PODS) else ""
        labels = {
            "gpu": str(gpu),
            "UUID": f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{NODE}.{gpu}')}",
            "pci_bus_id": f"00000000:{BUSES[gpu]:02X}:00.0",
            "device": f"nvidia{gpu}",
            "modelName": "NVIDIA H100 80GB HBM3",
            "Hostname": NODE,
            "DCGM_FI_DRIVER_VERSION": "570.133.20",
        }
        k8s = {
            "container": "vllm" if pod else "",
            "namespace": NAMESPACE if pod else "",
            "pod": pod,
        }
        gpus.append((labels, k8s, _gpu_values(bool(pod), k, rng)))
    out = []
    for field, kind, text, integer in DCGM_FIELDS:
        lines = []
        for labels, k8s, values in gpus:
            extra = (
                {"err_code": "0", "err_msg": "No Error"}
                if field == "DCGM_FI_DEV_XID_ERRORS"
                else {}
            )
            lines.append(
                f"{field}{label_text(**labels, **extra, **k8s)} "
                f"{dcgm_value(values[field], integer)}"
            )
        out += _family(field, kind, text, lines)
    return "\n".join(out) + "\n"


def scrapes() -> dict[str, str]:
    """File name -> content of every scrape of the fixture."""
    rng = np.random.default_rng(20250301)
    files = {}
    served = {pod: Served() for pod in PODS}
    for _ in range(WARM_INTERVALS):
        for pod in PODS:
            served[pod].interval(rng)
    for k in range(SCRAPES):
        for pod in PODS:
            at = FIRST_S + k * SCRAPE_S + OFFSET_S[pod]
            files[f"{pod}-{at}.prom"] = vllm_scrape(
                served[pod], WARM_INTERVALS + k, rng, FIRST_S - 600.5
            )
        at = FIRST_S + k * SCRAPE_S + OFFSET_S[DCGM_TARGET]
        files[f"{DCGM_TARGET}-{at}.prom"] = dcgm_scrape(WARM_INTERVALS + k, rng)
        for pod in PODS:
            served[pod].interval(rng)
    return files


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.glob("*.prom"):
        old.unlink()
    for name, text in scrapes().items():
        (FOLDER / name).write_text(text)


if __name__ == "__main__":
    main()
