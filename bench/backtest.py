"""The fleet backtest's speed: 14 days x every policy at 15 s control intervals in fast mode.

Curates on days 1-7 of the default workload (ServeGen m-large's 14 real days scaled to a
fleet, :func:`policies.fleet.servegen_scenario`), then runs every policy of the registry closed
loop over all 14 days (80,640 decisions each) and times each run. The baseline, in the same
process: the vectorised fast-mode model (:func:`simulator.fluid.simulate_fluid`) over the same
14 days at fixed counts, the plant's cost without a controller in the loop. Target (issue 11):
every policy together <= 60 s on 2 cores. Prints one line per policy, ONE JSON line last.

    .venv/bin/python bench/backtest.py
"""

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.simulator import cpu_model  # noqa: E402
from policies.curation import initial_cluster  # noqa: E402
from policies.fleet import servegen_scenario  # noqa: E402
from policies.loop import run_controller  # noqa: E402
from policies.oracle import INSTANT, Oracle  # noqa: E402
from policies.registry import POLICIES  # noqa: E402
from simulator.fluid import simulate_fluid  # noqa: E402
from simulator.fluid_loop import FluidLoop  # noqa: E402


def main() -> None:
    scenario = servegen_scenario()
    load = scenario.load
    started = time.perf_counter()
    curation = scenario.plan_curation().run()
    curation_s = time.perf_counter() - started
    start = initial_cluster(scenario.cluster, curation.inputs, load)
    started = time.perf_counter()
    simulate_fluid(load, start)
    vectorised_s = time.perf_counter() - started
    walls = {}
    for name, build in POLICIES.items():
        started = time.perf_counter()
        controller = build(curation, load)
        lifecycle = INSTANT if isinstance(controller, Oracle) else scenario.lifecycle
        run_controller(
            FluidLoop(load, start, lifecycle=lifecycle),
            controller,
            control_interval_s=scenario.control_interval_s,
        )
        walls[name] = time.perf_counter() - started
        print(json.dumps({"policy": name, "wall_s": round(walls[name], 2)}), flush=True)
    total_s = sum(walls.values())
    print(
        json.dumps(
            {
                "bench": "backtest",
                "cpu": cpu_model(),
                "days": round(load.count * load.interval_s / 86_400),
                "control_interval_s": scenario.control_interval_s,
                "decisions_per_policy": load.count,
                "policies": len(walls),
                "all_policies_wall_s": round(total_s, 2),
                "target_s": 60,
                "per_policy_wall_s": {k: round(v, 2) for k, v in walls.items()},
                "vectorised_fixed_counts_s": round(vectorised_s, 3),
                "closed_loop_vs_vectorised": round(total_s / len(walls) / vectorised_s, 1),
                "curation_wall_s": round(curation_s, 2),
                "curation_candidates": curation.candidates.height,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
