"""Request-level simulator speed and latency agreement against SplitwiseSim, same trace and shapes.

Replays the 58-minute Azure 2023 conversation trace (19,366 requests) with Llama-2-70B on DGX-H100
prefill and decode machines (one TP-8 instance each), at the trace's rate and compressed 4x and
16x, for the cluster shapes SplitwiseSim was measured on. Prints one line per run, then ONE JSON
line with every figure. Each shape is timed twice: the model alone (``simulate`` in this
process), and a whole ``heteroscale simulate`` process as a user runs it (interpreter start,
imports, reading the trace, the run, writing the DuckDB store), wall seconds from start to
exit as ``/usr/bin/time`` counts them.

The peer's figures are SplitwiseSim's own outputs on this trace (GitHub Mutinifni/splitwise-sim at
8f99e7dc9b40, single-threaded, Python 3.11, on a 2-vCPU AMD EPYC Zen 4), copied here: wall
seconds, TTFT p50/p99 (s) and TPOT p50/p99 (ms).
Its setup is mirrored where our model has the knob: 2,048 batch tokens, 512 sequences, a KV link
of 200 GiB/s, TTFT stamped when the prompt finishes, TPOT = (E2E - TTFT) / (output tokens - 1).

    .venv/bin/python -m bench.simulator

Each run reports wall and CPU seconds: on a shared machine CPU time moves less with other
jobs. ``--against REV`` compares this tree's simulator with the ``simulator/`` of git revision
``REV`` instead, on the shapes named by ``--shapes``: each side runs in its own process, in
turn, ``--reps`` times (after a warm-up run on a slice), and the minimum CPU seconds of each
side and their ratio are printed.

    .venv/bin/python -m bench.simulator --against HEAD~3 --shapes 8+8,4+4 --reps 5
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import polars as pl

from simulator import DEFAULT_TRACE_PATH, ClusterSpec, PoolSpec, default_trace, simulate

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="git revision whose simulator/ to compare with")
    parser.add_argument("--shapes", default="8+8,4+4", help="labels of PEER, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cpu-seconds", help=argparse.SUPPRESS)  # a child of --against
    args = parser.parse_args()
    if args.cpu_seconds:
        print(json.dumps(cpu_seconds(args.cpu_seconds.split(","))))
    elif args.against:
        compare(args.against, args.shapes.split(","), args.reps)
    else:
        peer_table()


def shape(label: str) -> tuple[int, int, float]:
    """Prefill instances, decode instances and rate factor of a :data:`PEER` label."""
    for name, prefill, decode, factor in PEER:
        if name == label:
            return prefill, decode, factor
    raise SystemExit(f"unknown shape {label!r}; known: {[key[0] for key in PEER]}")


def cpu_seconds(labels: list[str]) -> dict[str, float]:
    """CPU seconds of one simulation per shape, after a warm-up run on a slice."""
    trace = default_trace()
    simulate(trace.requests.head(3_000), cluster(2, 2), service="bench", start=trace.start)
    out = {}
    for label in labels:
        prefill, decode, factor = shape(label)
        requests = trace.requests.with_columns(pl.col("arrival_s") / factor)
        started = time.process_time()
        simulate(requests, cluster(prefill, decode), service="bench", start=trace.start)
        out[label] = time.process_time() - started
    return out


def compare(revision: str, labels: list[str], reps: int) -> None:
    """Minimum CPU seconds of this tree and of ``revision`` per shape, run in turn."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as other:
        archive = subprocess.run(
            ["git", "archive", revision, "simulator"], cwd=root, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", other], input=archive.stdout, check=True)
        # The revision's simulator/ first on the path (the working directory), then this
        # tree for the rest; simulator/paths.py finds data/ beside the package.
        (Path(other) / "data").symlink_to(root / "data")
        (Path(other) / "bench").symlink_to(root / "bench")
        times: dict[str, dict[str, list[float]]] = {"this": {}, revision: {}}
        for _ in range(reps):
            for side, cwd in (("this", root), (revision, Path(other))):
                child = subprocess.run(
                    [sys.executable, "-m", "bench.simulator", "--cpu-seconds", ",".join(labels)],
                    cwd=cwd,
                    env={**os.environ, "PYTHONPATH": str(root)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                for label, seconds in json.loads(child.stdout.splitlines()[-1]).items():
                    times[side].setdefault(label, []).append(seconds)
    result = {
        label: {
            "this_cpu_s": round(min(times["this"][label]), 3),
            f"{revision}_cpu_s": round(min(times[revision][label]), 3),
            "ratio": round(min(times["this"][label]) / min(times[revision][label]), 3),
        }
        for label in labels
    }
    print(json.dumps({"bench": "simulator_against", "cpu": cpu_model(), "reps": reps, **result}))


def cluster_file(prefill: int, decode: int) -> str:
    """:func:`cluster` as a cluster file (docs/simulator.md, "Your own cluster")."""
    return (
        "model: Llama-2-70B\n"
        f"prefill_pools: [{{gpu_type: H100-SXM, tp: 8, count: {prefill}}}]\n"
        f"decode_pools: [{{gpu_type: H100-SXM, tp: 8, count: {decode}}}]\n"
        "prefill_token_budget: 2048\ndecode_max_num_seqs: 512\n"
        f"kv_transfer_gbps: {200 * GIB}\n"
    )


def process_wall_s(trace_path: Path, prefill: int, decode: int, folder: Path) -> float:
    """Wall seconds of a whole ``heteroscale simulate`` process on this shape."""
    spec = folder / f"cluster-{prefill}-{decode}.yaml"
    spec.write_text(cluster_file(prefill, decode))
    out = folder / f"run-{prefill}-{decode}-{trace_path.stem}.duckdb"
    command = [sys.executable, "-m", "heteroscale", "simulate", "--trace", str(trace_path)]
    command += ["--cluster", str(spec), "--out", str(out), "--json"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def compressed_trace(trace, factor: float, folder: Path) -> Path:
    """The trace with arrivals ``factor`` times as fast, as an Azure-format file."""
    if factor == 1:
        return DEFAULT_TRACE_PATH
    arrived = pl.lit(trace.start.replace(tzinfo=None)) + pl.duration(
        microseconds=(pl.col("arrival_s") / factor * 1e6).round().cast(pl.Int64)
    )
    path = folder / f"azure-conv-x{factor:g}.csv"
    trace.requests.select(
        TIMESTAMP=arrived.dt.strftime("%Y-%m-%d %H:%M:%S%.6f") + "0",  # Azure's 7 digits
        ContextTokens="input_tokens",
        GeneratedTokens="output_tokens",
    ).write_csv(path)
    return path


def peer_table() -> None:
    trace = default_trace()
    runs = []
    folder = Path(tempfile.mkdtemp(prefix="bench-simulator-"))
    for (label, prefill, decode, factor), peer in PEER.items():
        requests = trace.requests.with_columns(pl.col("arrival_s") / factor)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = simulate(requests, cluster(prefill, decode), service="bench", start=trace.start)
        wall_s = time.perf_counter() - started
        cpu_s = time.process_time() - started_cpu
        done = result.requests
        multi = done.filter(pl.col("output_tokens") > 1)
        tpot_ms = (multi["finish_s"] - multi["first_token_s"]) / (multi["output_tokens"] - 1) * 1e3
        run = {
            "run": label,
            "requests": done.height,
            "wall_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "requests_per_wall_s": round(done.height / wall_s),
            "ttft_p50_p99_s": [round(v, 4) for v in quantiles(done["ttft_s"])],
            "tpot_p50_p99_ms": [round(v, 2) for v in quantiles(tpot_ms)],
            "process_wall_s": round(
                process_wall_s(compressed_trace(trace, factor, folder), prefill, decode, folder), 3
            ),
        }
        if peer:
            run["peer_wall_s"] = peer["wall_s"]
            run["speedup_vs_peer"] = round(peer["wall_s"] / wall_s, 1)
            run["process_speedup_vs_peer"] = round(peer["wall_s"] / run["process_wall_s"], 1)
            run["ttft_rel_diff_p50_p99"] = [
                rel(o, p) for o, p in zip(run["ttft_p50_p99_s"], peer["ttft"], strict=True)
            ]
            run["tpot_rel_diff_p50_p99"] = [
                rel(o, p) for o, p in zip(run["tpot_p50_p99_ms"], peer["tpot_ms"], strict=True)
            ]
        print(json.dumps(run))
        runs.append(run)
    by_label = {r["run"]: r["wall_s"] for r in runs}
    by_label_cpu = {r["run"]: r["cpu_s"] for r in runs}
    print(
        json.dumps(
            {
                "bench": "simulator_request_level",
                "cpu": cpu_model(),
                "runs": runs,
                "wall_growth_4x_rate_at_4+4": round(by_label["x4 4+4"] / by_label["4+4"], 2),
                "wall_growth_16x_rate_at_4+4": round(by_label["x16 4+4"] / by_label["4+4"], 2),
                "cpu_8+8_over_4+4": round(by_label_cpu["8+8"] / by_label_cpu["4+4"], 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
