"""Placement speed at fleet scale, and placement quality against an exact ILP and first-fit.

Speed: a generated topology of S2 big-pods of 10 S1 mini-pods of 10 nodes of 8 GPUs, from
1,000 to 10,000 nodes (80,000 GPUs), with one scale request per role of 100 services per
1,000 nodes (1,000 requests at 10,000 nodes, about a fifth of the GPUs asked for). Cycle 1
places every service from an empty cluster; cycle 2 moves every service to a new target
(scale-in and scale-out mixed). Only ``place_cycle`` is timed, each cycle twice from the same
state, back to back: without the repair (its work bound set to 0) and as shipped.

    .venv/bin/python -m bench.scheduler

Quality: on generated clusters of 48 to 192 nodes (4 to 16 S2s of 3 S1s of 4 nodes), one
cycle placing 6 to 24 generated services from empty, the greedy against

- the exact ILP of :mod:`scheduler.exact` (HiGHS) on the objective of :mod:`scheduler.weights`:
  the gap ``greedy / optimum - 1`` on total cost, and the shortfall of each, both against the
  priority-blind optimum (a lower bound on the greedy's cost) and against the optimum that
  honours service priority first (``service_priority=True``), which the greedy also does;
- the topology-blind first fit of :mod:`scheduler.first_fit`: instances outside their
  service's affinity domain, and the mean KV bandwidth factor of :mod:`scheduler.bandwidth`.

Prints one line per measurement, then ONE JSON line with every figure; ``--out FILE`` also
writes them there (the figures quoted in docs/scheduler.md are bench/results/scheduler.json,
which a run does not overwrite unless told to).
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from unittest.mock import patch

# Run as `python bench/NAME.py`, this folder heads sys.path and its simulator.py and
# scheduler.py shadow the packages of those names: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.simulator import cpu_model
from scheduler import (
    PlacementState,
    ScaleRequest,
    generate_topology,
    outcomes_to_frame,
    place_cycle,
    plan_to_frame,
    repair,
)
from scheduler.bandwidth import group_kv_bandwidth_factor
from scheduler.costs import placement_cost
from scheduler.exact import exact_placement
from scheduler.first_fit import affinity_violations, first_fit_placement, mean_kv_bandwidth_factor
from scheduler.workload_generator import generate_services, generate_targets

#: Shape of the speed topologies: 100 nodes (800 GPUs) per S2.
S1_PER_S2, NODES_PER_S1, GPUS_PER_NODE = 10, 10, 8
#: Services per 1,000 nodes: two requests each; up to 16 decoders per service.
SERVICES_PER_1000_NODES = 50
SPEED_NODES = (1_000, 2_500, 5_000, 10_000)
#: Quality instances: (S2 count, services, seeds).
QUALITY_SIZES = ((4, 6, range(20)), (8, 12, range(5)), (16, 24, range(3)))


def requests_to(state: PlacementState, targets: dict[str, tuple[int, int]]) -> list[ScaleRequest]:
    """One request per service and role: the target minus what the state runs."""
    return [
        ScaleRequest(name, role, target - state.instances(name, role))
        for name, pair in targets.items()
        for role, target in zip(("prefill", "decode"), pair, strict=True)
    ]


def speed(nodes: int, seed: int = 0) -> dict:
    """Two timed cycles on a generated topology of ``nodes`` nodes."""
    topology = generate_topology(
        seed,
        s2_count=nodes // (S1_PER_S2 * NODES_PER_S1),
        s1_per_s2=S1_PER_S2,
        nodes_per_s1=NODES_PER_S1,
        gpus_per_node=GPUS_PER_NODE,
    )
    services = generate_services(seed, nodes * SERVICES_PER_1000_NODES // 1000)
    state = PlacementState.empty()
    cycles = []
    for cycle, targets in enumerate(
        (
            generate_targets(seed, services, max_decode=16),
            generate_targets(seed + 1, services, max_decode=16),
        )
    ):
        requests = requests_to(state, targets)
        with patch.object(repair, "REPAIR_WORK", 0):
            started = time.perf_counter()
            place_cycle(topology, state, requests, services, cycle=cycle)
            without_repair = time.perf_counter() - started
        started = time.perf_counter()
        result = place_cycle(topology, state, requests, services, cycle=cycle)
        elapsed = time.perf_counter() - started
        state = result.state
        cycles.append(
            {
                "requests": sum(1 for r in requests if r.delta_instances),
                "seconds": round(elapsed, 3),
                "seconds_without_repair": round(without_repair, 3),
                "requested_instances": sum(o.requested_instances for o in result.outcomes),
                "shortfall_instances": sum(o.shortfall_instances for o in result.outcomes),
            }
        )
    return {
        "nodes": len(topology.nodes),
        "gpus": topology.total_gpus,
        "gpus_used_after": sum(state.used_gpus().values()),
        "cycles": cycles,
        "seconds_per_cycle": max(c["seconds"] for c in cycles),
    }


def quality(s2_count: int, services_count: int, seed: int) -> dict:
    """One cycle from empty: greedy vs exact ILP vs first fit on the same cluster and targets."""
    topology = generate_topology(seed, s2_count=s2_count, s1_per_s2=3, nodes_per_s1=4)
    services = generate_services(seed, services_count)
    wanted = generate_targets(seed, services, max_decode=6)
    result = place_cycle(
        topology, PlacementState.empty(), requests_to(PlacementState(), wanted), services
    )
    greedy = placement_cost(
        plan_to_frame(result.records), outcomes_to_frame(result.outcomes), services
    )
    started = time.perf_counter()
    exact = exact_placement(topology, wanted, services)
    ilp_s = time.perf_counter() - started
    fair = exact_placement(topology, wanted, services, service_priority=True)
    blind = first_fit_placement(topology, wanted, services)
    groups = result.state.groups
    return {
        "nodes": len(topology.nodes),
        "services": services_count,
        "seed": seed,
        "greedy_cost": greedy["total_cost"],
        "greedy_shortfall_gpus": greedy["shortfall_gpus"],
        "greedy_high_priority_gpus": greedy["high_priority_gpus"],
        "ilp_cost": exact.total_cost,
        "ilp_shortfall_gpus": exact.shortfall_gpus,
        "ilp_optimal": exact.optimal,
        "ilp_seconds": round(ilp_s, 2),
        "gap": greedy["total_cost"] / exact.total_cost - 1,
        "priority_ilp_cost": fair.total_cost,
        "priority_ilp_shortfall_gpus": fair.shortfall_gpus,
        "priority_ilp_optimal": fair.optimal,
        "gap_vs_priority_ilp": greedy["total_cost"] / fair.total_cost - 1,
        "greedy_affinity_violations": sum(not r.affinity_satisfied for r in result.records),
        "first_fit_affinity_violations": affinity_violations(topology, blind, services),
        "greedy_kv_bandwidth_factor": statistics.fmean(
            group_kv_bandwidth_factor(topology, g) for g in groups
        ),
        "first_fit_kv_bandwidth_factor": mean_kv_bandwidth_factor(topology, blind),
    }


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    instances = []
    for s2_count, services_count, seeds in QUALITY_SIZES:
        for seed in seeds:
            row = quality(s2_count, services_count, seed)
            instances.append(row)
            print(
                f"quality {row['nodes']:>3} nodes {row['services']:>2} services seed {seed}:"
                f" greedy {row['greedy_cost']:.0f} (short {row['greedy_shortfall_gpus']} GPUs)"
                f" ILP {row['ilp_cost']:.0f} (short {row['ilp_shortfall_gpus']},"
                f" {row['ilp_seconds']} s) gap {row['gap']:.1%};"
                f" priority ILP {row['priority_ilp_cost']:.0f}"
                f" gap {row['gap_vs_priority_ilp']:.1%};"
                f" affinity violations greedy {row['greedy_affinity_violations']}"
                f" first-fit {row['first_fit_affinity_violations']};"
                f" KV factor greedy {row['greedy_kv_bandwidth_factor']:.3f}"
                f" first-fit {row['first_fit_kv_bandwidth_factor']:.3f}",
                flush=True,
            )
    no_shortfall = [r["gap"] for r in instances if r["greedy_shortfall_gpus"] == 0]
    quality_figures = {
        "instances": len(instances),
        "gap": summary([r["gap"] for r in instances]),
        "gap_without_greedy_shortfall": summary(no_shortfall) if no_shortfall else None,
        "instances_without_greedy_shortfall": len(no_shortfall),
        "instances_within_2pct": sum(r["gap"] <= 0.02 for r in instances),
        "instances_above_2pct": [
            f"{r['nodes']} nodes seed {r['seed']}: {r['gap']:.2%}"
            for r in instances
            if r["gap"] > 0.02
        ],
        "gap_vs_priority_ilp": summary([r["gap_vs_priority_ilp"] for r in instances]),
        "instances_within_2pct_of_priority_ilp": sum(
            r["gap_vs_priority_ilp"] <= 0.02 for r in instances
        ),
        "instances_with_greedy_shortfall": sum(r["greedy_shortfall_gpus"] > 0 for r in instances),
        "ilp_not_proved_optimal": sum(
            not (r["ilp_optimal"] and r["priority_ilp_optimal"]) for r in instances
        ),
        "greedy_affinity_violations": sum(r["greedy_affinity_violations"] for r in instances),
        "first_fit_affinity_violations": sum(r["first_fit_affinity_violations"] for r in instances),
        "greedy_kv_bandwidth_factor": statistics.fmean(
            r["greedy_kv_bandwidth_factor"] for r in instances
        ),
        "first_fit_kv_bandwidth_factor": statistics.fmean(
            r["first_fit_kv_bandwidth_factor"] for r in instances
        ),
        "rows": instances,
    }
    series = []
    for nodes in SPEED_NODES:
        figures = speed(nodes)
        series.append(figures)
        print(
            f"{figures['nodes']:>6} nodes {figures['gpus']:>6} GPUs: cycles "
            + ", ".join(
                f"{c['requests']} requests {c['seconds']:.3f} s"
                f" ({c['seconds_without_repair']:.3f} s without repair)"
                f" (shortfall {c['shortfall_instances']}/{c['requested_instances']})"
                for c in figures["cycles"]
            ),
            flush=True,
        )
    largest = series[-1]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "nodes": largest["nodes"],
        "gpus": largest["gpus"],
        "requests": largest["cycles"][0]["requests"],
        "seconds_per_cycle": largest["seconds_per_cycle"],
        "peak_rss_mb": round(peak_rss_mb, 1),
        "cpu": cpu_model(),
        "speed_series": series,
        "quality": quality_figures,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
