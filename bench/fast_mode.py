"""Fast mode at scale: 14 days of ServeGen-driven load on a 1,000-instance cluster, 15 s intervals.

The load is the shipped 14 real days of ServeGen's m-large service (all 162 Bailian clients
summed per 10-minute window, data/traces/README.md), unscaled: 196 requests/s on average,
48 to 583, on 833 prefill (4 x L20) and 167 decode (4 x H20) instances, the embedded 5:1
split. Request lengths follow the Azure 2023 conversation trace. Times loading the rates and
building the load, the fluid model (:func:`simulator.fluid.simulate_fluid`) and the canonical
frames it writes (one row per pool per interval, plus ``service_load``), and reports peak RSS.
Prints ONE JSON line last.

    .venv/bin/python -m bench.fast_mode
"""

import json
import resource
import sys
import time
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import polars as pl

from bench.simulator import cpu_model
from simulator import ClusterSpec, PoolSpec, default_trace
from simulator.fluid import simulate_fluid
from simulator.fluid_load import load_from_windows
from simulator.servegen import load_servegen_rates

DAYS = 14
INTERVAL_S = 15.0
PREFILL, DECODE = 833, 167


def main() -> None:
    lengths = default_trace().requests
    cluster = ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec("prefill", "L20", tp=4, count=PREFILL),),
        decode_pools=(PoolSpec("decode", "H20", tp=4, count=DECODE),),
    )
    started = time.perf_counter()
    load = load_from_windows(load_servegen_rates(), lengths, INTERVAL_S, days=DAYS)
    result = simulate_fluid(load, cluster)
    model_s = time.perf_counter() - started
    samples = result.pool_samples("bench")
    service = result.service_load("bench")
    wall_s = time.perf_counter() - started
    by_role = (
        samples.group_by("role")
        .agg(
            pl.col("gpu_util_ratio").mean().round(3).alias("mean_gpu_util"),
            pl.col("prefill_tps_total", "decode_tps").mean().round(1),
            pl.col("ttft_p50_s", "tbt_p50_s").median().round(4),
        )
        .sort("role")
    )
    print(
        json.dumps(
            {
                "bench": "fast_mode",
                "cpu": cpu_model(),
                "days": DAYS,
                "interval_s": INTERVAL_S,
                "intervals": load.count,
                "instances": PREFILL + DECODE,
                "cluster": cluster.describe(),
                "offered_requests": round(float(load.requests.sum())),
                "offered_rps_min_mean_max": [
                    round(float(v / INTERVAL_S), 1)
                    for v in (load.requests.min(), load.requests.mean(), load.requests.max())
                ],
                "model_wall_s": round(model_s, 2),
                "wall_s_with_frames": round(wall_s, 2),
                "pool_sample_rows": samples.height,
                "service_load_rows": service.height,
                "by_role": by_role.to_dicts(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
