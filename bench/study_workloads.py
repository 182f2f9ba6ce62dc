"""The signal study beyond the default day: where the paper's conclusions hold and where they
change (docs/signal-study.md). Prints each workload's candidates with their class and headline
statistics, then ONE JSON line last with every workload's ranking.

    .venv/bin/python -m bench.study_workloads [--only NAME ...]

Workloads, each simulated at request level on a fixed cluster (no autoscaling, the setting of
the paper's Fig. 2) and studied at 60 s windows against the SLO of docs/policy.md:

- ``servegen-day``: the embedded default, ServeGen m-large day 1 x 0.02 on the default cluster;
- ``servegen-3-days``: days 1-3 at the same scale (1.4 million requests);
- ``servegen-day-autoscaled``: day 2 at the same scale with the pools scaled by HeteroScale
  (curated on day 1 with the main job's chosen configuration), placed on the fleet topology:
  what a study of production telemetry sees, where the pools' sizes follow the load;
- ``azure-hour``: the shipped Azure 2023 conversation hour on the default cluster;
- ``mooncake-hour``: Mooncake's conversation trace (long prompts, prefix reuse; shipped in
  data/traces) with Llama-3.1-8B on 24 L20 prefill and 4 H20 decode instances
  (TP 1) and prefix-aware routing: the 70B model on L20 cannot hold its 120k-token prompts;
- ``alibaba-gentd26``: real production telemetry (Stable-Diffusion pods, one role), ingested
  from ``HETEROSCALE_ALIBABA_DIR`` (not shipped) and studied at 10-minute windows against QPS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import polars as pl

from policies.curation import initial_cluster
from policies.fleet import servegen_scenario
from policies.heteroscale import HeteroScale
from policies.loop import run_controller
from policies.modes import placement_requirements
from policies.request_plant import RequestPlant
from policies.slo import ServiceSLO
from scheduler import FLEET_TOPOLOGY_PATH, load_topology
from signals import classify, study_table
from simulator import default_cluster, default_trace, load_trace, servegen_day, simulate
from simulator.fluid_load import load_from_requests
from simulator.paths import MOONCAKE_CONV_JSONL
from simulator.servegen import DAY_RATE_SCALE, DAY_S, load_servegen_rates, rate_requests
from telemetry.ingest import ingest, load_mapping
from telemetry.store import TelemetryStore

ROOT = Path(__file__).resolve().parents[1]
ALIBABA_MAPPING = ROOT / "telemetry" / "ingest" / "mappings" / "alibaba_gentd26.yaml"
ALIBABA_FILES = ("pod_gpu_duty_cycle_anon.csv.gz", "qps.csv.gz")
WINDOW_S = 60.0
#: The configuration the main job's curation chose on the default workload until 2026-12-07
#: (docs/policy.md), kept so that docs/signal-study.md's autoscaled day stays reproducible.
CHOSEN = {"utilisation_target": (0.8,), "scale_in_cooldown_s": (600.0,), "scale_in_step": (0.05,)}
SHOWN = ["rank", "role", "signal", "class", "r_squared_low", "dynamic_range", "load_dynamic_range"]
SHOWN += ["snr", "steady_cv", "reset_pvalue", "slope_ratio"]


def simulated(trace, cluster) -> pl.DataFrame:
    run = simulate(trace.requests, cluster, service="chat", start=trace.start)
    return classify(
        study_table(run.instance_samples, run.service_load, window_s=WINDOW_S, slo=ServiceSLO())
    )


def servegen_days(days: int):
    lengths = default_trace().requests
    rates = load_servegen_rates()
    return rate_requests(
        rates, lengths, first_s=0.0, span_s=days * DAY_S, rate_scale=DAY_RATE_SCALE
    )


def autoscaled_day() -> pl.DataFrame:
    scenario = servegen_scenario(days=2, curation_days=1, rate_scale=DAY_RATE_SCALE)
    curation = scenario.plan_curation(CHOSEN).run()
    trace = scenario.requests(DAY_S, DAY_S)
    load = load_from_requests(trace.requests, trace.start, scenario.load.interval_s)
    inputs = curation.inputs
    plant = RequestPlant(
        trace.requests,
        initial_cluster(scenario.cluster, inputs, load),
        service="chat",
        start=trace.start,
        topology=load_topology(FLEET_TOPOLOGY_PATH),
        requirements=placement_requirements(
            inputs.of_role("prefill")[0].key, inputs.of_role("decode")[0].key, inputs.pd_ratio
        ),
        interval_s=scenario.load.interval_s,
        lifecycle=scenario.lifecycle,
    )
    run_controller(plant, HeteroScale(inputs, curation.config), control_interval_s=15.0)
    run = plant.result()
    return classify(
        study_table(run.instance_samples, run.service_load, window_s=WINDOW_S, slo=ServiceSLO())
    )


def mooncake_cluster():
    base = default_cluster()
    return replace(
        base,
        model="Llama-3.1-8B",
        prefill_pools=(replace(base.prefill_pools[0], tp=1, count=24),),
        decode_pools=(replace(base.decode_pools[0], tp=1, count=4),),
        prefix_aware_routing=True,
    )


def alibaba() -> pl.DataFrame | None:
    folder = os.environ.get("HETEROSCALE_ALIBABA_DIR")
    if not folder:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        store = TelemetryStore(Path(tmp) / "gentd26.duckdb")
        files = [str(Path(folder) / name) for name in ALIBABA_FILES]
        ingest(files, store, mapping=load_mapping(ALIBABA_MAPPING))
        samples = store.read("instance_samples").drop("day")
        load = store.read("service_load").drop("day")
    return classify(study_table(samples, load, window_s=600.0))


WORKLOADS = {
    "servegen-day": lambda: simulated(servegen_day(), default_cluster()),
    "servegen-3-days": lambda: simulated(servegen_days(3), default_cluster()),
    "servegen-day-autoscaled": autoscaled_day,
    "azure-hour": lambda: simulated(default_trace(), default_cluster()),
    "mooncake-hour": lambda: simulated(
        load_trace(MOONCAKE_CONV_JSONL, "mooncake"), mooncake_cluster()
    ),
    "alibaba-gentd26": alibaba,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    args = parser.parse_args()
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_width_chars(200)
    results = {}
    for name in args.only:
        started = time.perf_counter()
        table = WORKLOADS[name]()
        if table is None:
            print(f"{name}: skipped, its data is not here")
            continue
        table = table.filter(pl.col("gpu_type").is_null()).sort("rank")
        print(f"\n{name} ({time.perf_counter() - started:.0f} s)")
        print(table.select([c for c in SHOWN if c in table.columns]))
        results[name] = table.select(
            "rank",
            "role",
            "signal",
            "class",
            "r_squared_low",
            "dynamic_range",
            "steady_cv",
            "reasons",
        ).to_dicts()
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
