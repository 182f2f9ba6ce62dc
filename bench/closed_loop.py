"""Closed loop: the cost of one interval's telemetry against the length of the run behind it.

Replays the first ``--hours`` of the shipped ServeGen day (three Bailian clients, arrivals
regenerated from their fitted windows, Azure request lengths) on the embedded default cluster
through :class:`simulator.closed_loop.ClosedLoopSimulation`, one 15 s control interval at a
time. Each step first runs the cluster to the interval's end, then times ``advance``, which then
only computes telemetry (:class:`simulator.log_window.LogWindow`: the rows that still count).
Once an hour of history it also times, in the same process, the computation ``advance`` did
before: every interval's telemetry from the whole log (``instance_samples`` over all intervals
so far), then checks that the new interval reads the same both ways. Prints, per hour, the
median telemetry milliseconds per interval both ways. Prints ONE JSON line last.

    .venv/bin/python -m bench.closed_loop [--hours 6]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import polars as pl

from bench.simulator import cpu_model
from simulator import default_cluster, default_trace, load_servegen_windows, servegen_requests
from simulator.closed_loop import ClosedLoopSimulation
from simulator.metrics import Bins, instance_samples

INTERVAL_S = 15.0


def _whole_log_telemetry(loop: ClosedLoopSimulation, complete: int) -> pl.DataFrame:
    """Every interval so far from the whole log: what ``advance`` computed per call before."""
    sim = loop._sim
    bins = Bins(loop._start, INTERVAL_S, complete)
    return instance_samples(
        sim.recorder,
        sim.infos,
        bins,
        loop._service,
        mid_run=True,
        pending=sim.pending_strides(bins.end_s),
        presence=sim.lifecycle.presence(bins),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    hours = parser.parse_args().hours
    windows = load_servegen_windows().filter(pl.col("window_start_s") < hours * 3600)
    trace = servegen_requests(windows, default_trace().requests, seed=0)
    loop = ClosedLoopSimulation(
        trace.requests, default_cluster(), service="day", start=trace.start, interval_s=INTERVAL_S
    )
    per_hour = int(3600 / INTERVAL_S)
    rows, window_ms, sim_s = [], [], 0.0
    started = time.perf_counter()
    for k in range(1, hours * per_hour + 1):
        until_s = k * INTERVAL_S
        t0 = time.perf_counter()
        loop._sim.run(until_s)
        t1 = time.perf_counter()
        frames = loop.advance(until_s)
        window_ms.append((time.perf_counter() - t1) * 1e3)
        sim_s += t1 - t0
        if k % per_hour:
            continue
        t2 = time.perf_counter()
        whole = _whole_log_telemetry(loop, k)
        whole_ms = (time.perf_counter() - t2) * 1e3
        last = whole.filter(pl.col("ts") == pl.col("ts").max())
        rows.append(
            {
                "history_h": k // per_hour,
                "logged_passes": loop._sim.recorder.passes().instance.size,
                "window_ms_median": round(statistics.median(window_ms[-per_hour:]), 2),
                "whole_log_ms": round(whole_ms, 1),
                "same_values": last.equals(frames.instance_samples),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "bench": "closed_loop",
                "cpu": cpu_model(),
                "requests": trace.requests.height,
                "cluster": default_cluster().describe(),
                "intervals": len(window_ms),
                "wall_s": round(time.perf_counter() - started, 1),
                "cluster_run_s": round(sim_s, 1),
                "window_ms_last_over_first_hour": round(
                    rows[-1]["window_ms_median"] / rows[0]["window_ms_median"], 2
                ),
                "whole_log_ms_last_over_first_hour": round(
                    rows[-1]["whole_log_ms"] / rows[0]["whole_log_ms"], 2
                ),
                "by_hour": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
