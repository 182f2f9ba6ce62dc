"""A diurnal day at fixed instance counts: how each role's GPU utilisation follows the load.

Regenerates one day of arrivals from the shipped ServeGen slice (three Bailian clients, 10-minute
rate windows with their fitted inter-arrival families; data/traces/README.md), gives them request
lengths drawn from the Azure 2023 trace, and replays the day on the embedded default cluster
without any autoscaling. Then groups the 10-minute windows by offered load relative to the
day's peak and prints each role's mean GPU utilisation and SM activity per group: the paper's
Fig. 2(c, d) experiment (decode utilisation stays near 87% all day, prefill follows load from
~84% down to ~8%). Prints ONE JSON line last.

    .venv/bin/python -m bench.diurnal_day
"""

import json
import sys
import time
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import polars as pl

from bench.simulator import cpu_model
from simulator import (
    default_cluster,
    default_trace,
    load_servegen_windows,
    servegen_requests,
    simulate,
)

#: Windows are grouped in bands of this width of offered load relative to the day's peak.
BAND = 0.2


def main() -> None:
    trace = servegen_requests(load_servegen_windows(), default_trace().requests, seed=0)
    started = time.perf_counter()
    result = simulate(trace.requests, default_cluster(), service="day", start=trace.start)
    wall_s = time.perf_counter() - started
    window = pl.col("ts").dt.truncate("10m")
    load = (
        result.service_load.group_by(window)
        .agg(pl.col("input_tps").mean(), pl.col("request_rate_rps").mean())
        .with_columns(relative_load=pl.col("input_tps") / pl.col("input_tps").max())
    )
    roles = (
        result.instance_samples.group_by(window, "role")
        .agg(pl.col("gpu_util_ratio").mean(), pl.col("sm_active_ratio").mean())
        .join(load, on="ts")
        .with_columns(band=(pl.col("relative_load") / BAND).floor().clip(upper_bound=4) * BAND)
        .group_by("band", "role")
        .agg(
            windows=pl.len(),
            relative_load=pl.col("relative_load").mean().round(3),
            gpu_util=pl.col("gpu_util_ratio").mean().round(3),
            sm_active=pl.col("sm_active_ratio").mean().round(3),
        )
        .sort("relative_load", "role")
    )
    for row in roles.iter_rows(named=True):
        print(json.dumps(row))
    print(
        json.dumps(
            {
                "bench": "diurnal_day",
                "cpu": cpu_model(),
                "requests": trace.requests.height,
                "cluster": default_cluster().describe(),
                "wall_s": round(wall_s, 2),
                "peak_to_trough_10min": round(
                    1 / load.filter(pl.col("relative_load") > 0)["relative_load"].min(), 2
                ),
                "by_load": roles.to_dicts(),
            }
        )
    )


if __name__ == "__main__":
    main()
