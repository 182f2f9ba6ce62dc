"""Where HeteroScale's GPU-hours above the oracle's go: the chosen configuration with one
mechanism changed at a time, closed loop in fast mode on the default workload's evaluation days
(docs/policy.md, "The gap to the oracle"). Prints one line per variant, then ONE JSON line.

    .venv/bin/python -m bench.oracle_gap

Curation is the main job's chosen configuration (u 0.7, scale-in cool-down 300 s, step 5%),
curated on days 1-7 over that single grid point so that the pressure tests are the same.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from policies.curation import initial_cluster
from policies.fleet import servegen_scenario
from policies.heteroscale import HeteroScale
from policies.loop import run_controller
from policies.oracle import INSTANT, Oracle
from policies.scoring import score
from simulator.fluid_loop import FluidLoop

CHOSEN = {"utilisation_target": (0.7,), "scale_in_cooldown_s": (300.0,), "scale_in_step": (0.05,)}


def variants(config, lifecycle):
    """Name -> (config, lifecycle, HeteroScale keyword arguments)."""
    core = replace(
        config,
        utilisation_target=1.0,
        scale_out_threshold=0.0,
        scale_in_threshold=0.0,
        scale_out_cooldown_s=15.0,
        scale_in_cooldown_s=15.0,
        scale_in_step=1.0,
    )
    bare = {"soft_scale_in": False, "latency_feedback": False}
    return {
        "chosen": (config, lifecycle, {}),
        "instant start": (config, INSTANT, {}),
        "u 0.8": (replace(config, utilisation_target=0.8), lifecycle, {}),
        "u 0.9": (replace(config, utilisation_target=0.9), lifecycle, {}),
        "u 1.0": (replace(config, utilisation_target=1.0), lifecycle, {}),
        "u 1.0, instant start": (replace(config, utilisation_target=1.0), INSTANT, {}),
        "no hysteresis": (
            replace(config, scale_out_threshold=0.0, scale_in_threshold=0.0),
            lifecycle,
            {},
        ),
        "scale-in 600 s, 5%": (replace(config, scale_in_cooldown_s=600.0), lifecycle, {}),
        "scale-in 180 s, 10%": (
            replace(config, scale_in_cooldown_s=180.0, scale_in_step=0.1),
            lifecycle,
            {},
        ),
        "scale-in 15 s, 100%": (
            replace(config, scale_in_cooldown_s=15.0, scale_in_step=1.0),
            lifecycle,
            {},
        ),
        "no soft scale-in": (config, lifecycle, {"soft_scale_in": False}),
        "no latency feedback": (config, lifecycle, {"latency_feedback": False}),
        "proportional core alone": (core, lifecycle, bare),
        "proportional core alone, instant start": (core, INSTANT, bare),
    }


def main() -> None:
    scenario = servegen_scenario()
    curation = scenario.plan_curation(CHOSEN).run()
    evaluation, inputs = scenario.evaluation, curation.inputs
    start = initial_cluster(scenario.cluster, inputs, evaluation)

    def scores(controller, lifecycle) -> dict[str, float]:
        run = run_controller(
            FluidLoop(evaluation, start, lifecycle=lifecycle),
            controller,
            control_interval_s=scenario.control_interval_s,
        )
        return score(run, scenario.slo, pd_ratio=inputs.pd_ratio)

    oracle = scores(Oracle(inputs, evaluation), INSTANT)
    rows = []
    for name, (config, lifecycle, options) in variants(curation.config, scenario.lifecycle).items():
        found = scores(HeteroScale(inputs, config, **options), lifecycle)
        row = {
            "variant": name,
            "gpu_hours": round(found["gpu_hours"]),
            "x_oracle": round(found["gpu_hours"] / oracle["gpu_hours"], 3),
            "ttft_attainment": round(found["ttft_attainment"], 4),
            "tbt_attainment": round(found["tbt_attainment"], 4),
            "avg_gpu_util": round(found["avg_gpu_util"], 3),
        }
        rows.append(row)
        print("  ".join(f"{k} {v}" for k, v in row.items()))
    print(json.dumps({"oracle_gpu_hours": round(oracle["gpu_hours"]), "variants": rows}))


if __name__ == "__main__":
    main()
