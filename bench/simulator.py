"""Request-level simulator speed and latency agreement against SplitwiseSim, same trace and shapes.

Replays the 58-minute Azure 2023 conversation trace (19,366 requests) with Llama-2-70B on DGX-H100
prefill and decode machines (one TP-8 instance each), at the trace's rate and compressed 4x and
16x, for the cluster shapes SplitwiseSim was measured on. Prints one line per run, then ONE JSON
line with every figure.

The peer's figures are SplitwiseSim's own outputs on this trace, measured on a 2-vCPU AMD EPYC
(../shared/reference/peer-splitwisesim.md): wall seconds, TTFT p50/p99 (s) and TPOT p50/p99 (ms).
Its setup is mirrored where our model has the knob: 2,048 batch tokens, 512 sequences, a KV link
of 200 GiB/s, TTFT stamped when the prompt finishes, TPOT = (E2E - TTFT) / (output tokens - 1).

    .venv/bin/python -m bench.simulator
"""

import json
import platform
import resource
import time

import polars as pl

from simulator import ClusterSpec, PoolSpec, default_trace, simulate

#: (label, prefill machines, decode machines, rate factor) -> SplitwiseSim's figures.
PEER = {
    ("1+1", 1, 1, 1): {"wall_s": 66.5, "ttft": (0.112, 0.696), "tpot_ms": (31.5, 66.3)},
    ("4+4", 4, 4, 1): {"wall_s": 14.7, "ttft": (0.078, 0.383), "tpot_ms": (31.5, 33.5)},
    ("8+8", 8, 8, 1): {"wall_s": 10.6, "ttft": (0.077, 0.381), "tpot_ms": (31.6, 33.5)},
    ("x4 2+2", 2, 2, 4): {"wall_s": 191.8, "ttft": (0.176, 12.10), "tpot_ms": (45.3, 188.0)},
    ("x4 4+4", 4, 4, 4): {"wall_s": 81.8, "ttft": (0.082, 0.558), "tpot_ms": (31.2, 42.7)},
    ("x16 4+4", 4, 4, 16): None,  # not measured by the peer: shows how wall time grows
}

GIB = 1024**3 / 1e9  # GB per GiB


def cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def cluster(prefill: int, decode: int) -> ClusterSpec:
    return ClusterSpec(
        model="Llama-2-70B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=8, count=prefill),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=8, count=decode),),
        prefill_token_budget=2048,
        decode_max_num_seqs=512,
        kv_transfer_gbps=200 * GIB,
    )


def quantiles(series: pl.Series) -> tuple[float, float]:
    return (
        float(series.quantile(0.5, interpolation="linear")),
        float(series.quantile(0.99, interpolation="linear")),
    )


def rel(ours: float, peer: float) -> float:
    return round((ours - peer) / peer, 3)


def main() -> None:
    trace = default_trace()
    runs = []
    for (label, prefill, decode, factor), peer in PEER.items():
        requests = trace.requests.with_columns(pl.col("arrival_s") / factor)
        started = time.perf_counter()
        result = simulate(requests, cluster(prefill, decode), service="bench", start=trace.start)
        wall_s = time.perf_counter() - started
        done = result.requests
        multi = done.filter(pl.col("output_tokens") > 1)
        tpot_ms = (multi["finish_s"] - multi["first_token_s"]) / (multi["output_tokens"] - 1) * 1e3
        run = {
            "run": label,
            "requests": done.height,
            "wall_s": round(wall_s, 3),
            "requests_per_wall_s": round(done.height / wall_s),
            "ttft_p50_p99_s": [round(v, 4) for v in quantiles(done["ttft_s"])],
            "tpot_p50_p99_ms": [round(v, 2) for v in quantiles(tpot_ms)],
        }
        if peer:
            run["peer_wall_s"] = peer["wall_s"]
            run["speedup_vs_peer"] = round(peer["wall_s"] / wall_s, 1)
            run["ttft_rel_diff_p50_p99"] = [
                rel(o, p) for o, p in zip(run["ttft_p50_p99_s"], peer["ttft"], strict=True)
            ]
            run["tpot_rel_diff_p50_p99"] = [
                rel(o, p) for o, p in zip(run["tpot_p50_p99_ms"], peer["tpot_ms"], strict=True)
            ]
        print(json.dumps(run))
        runs.append(run)
    by_label = {r["run"]: r["wall_s"] for r in runs}
    print(
        json.dumps(
            {
                "bench": "simulator_request_level",
                "cpu": cpu_model(),
                "runs": runs,
                "wall_growth_4x_rate_at_4+4": round(by_label["x4 4+4"] / by_label["4+4"], 2),
                "wall_growth_16x_rate_at_4+4": round(by_label["x16 4+4"] / by_label["4+4"], 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
