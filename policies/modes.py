"""Fast mode against request level: the same policies, the same arrivals, both plants.

Curation sweeps and the fleet backtest run in fast mode (:class:`simulator.fluid_loop.FluidLoop`);
the chosen policy and the strongest baselines are then run again at request level
(:class:`policies.request_plant.RequestPlant`: every request simulated, every action placed
on a topology, KV bandwidth from the placement) on a span of the evaluation days, and both runs
are scored the same way. The gap between the two is how far the fast-mode figures can be
trusted for that policy.

The request-level span's requests come from the scenario (``FleetScenario.requests``); fast
mode is fed the same requests binned (:func:`simulator.fluid_load.load_from_requests`), so the
two modes see identical arrivals.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from policies.controller import PoolKey
from policies.curation import Curation, initial_cluster
from policies.fleet import Builder, FleetScenario
from policies.loop import run_controller
from policies.oracle import INSTANT, Oracle
from policies.request_plant import RequestPlant
from policies.scoring import score
from scheduler import (
    FLEET_TOPOLOGY_PATH,
    RoleRequirements,
    ServiceRequirements,
    Topology,
    load_topology,
)
from simulator.fluid_load import load_from_requests
from simulator.fluid_loop import FluidLoop

#: Scores whose gap between the modes :func:`compare_modes` reports.
COMPARED = ("gpu_hours", "avg_gpu_util", "ttft_attainment", "tbt_attainment", "scaling_actions")


def placement_requirements(
    prefill: PoolKey, decode: PoolKey, pd_ratio: float, *, affinity: str = "s2"
) -> ServiceRequirements:
    """Placement needs of a service whose roles run on the ``prefill`` and ``decode`` pools,
    at the curated ratio ``r``, with a ratio tolerance of ``(1 + r) / 2`` prefill instances
    per Deployment Group.

    The coordinated policy keeps each pool within one instance of its share of the total,
    which leaves prefill up to ``(1 + r) / 2`` instances from ``r x decode``; the scheduler's
    default tolerance of one instance would refuse most of its steps when ``r`` is large
    (9.25 on the default workload).
    """
    roles = {
        role: RoleRequirements(preferred_gpu_type=key[1], gpus_per_instance=key[2])
        for role, key in (("prefill", prefill), ("decode", decode))
    }
    return ServiceRequirements(
        prefill=roles["prefill"],
        decode=roles["decode"],
        affinity=affinity,
        pd_ratio=pd_ratio,
        ratio_tolerance=(1 + pd_ratio) / 2,
    )


def compare_modes(
    scenario: FleetScenario,
    curation: Curation,
    builders: Mapping[str, Builder],
    *,
    first_s: float,
    span_s: float,
    topology: Topology | None = None,
) -> pl.DataFrame:
    """Run each policy on one span in both modes; one row per policy and mode.

    Parameters
    ----------
    scenario : FleetScenario
    curation : Curation
        As the fleet backtest curated it (the span should lie in the evaluation part).
    builders : Mapping[str, Builder]
    first_s, span_s : float
        The span, in seconds from the scenario's start.
    topology : Topology, optional
        Where the request-level runs are placed (default: the shipped fleet,
        ``data/topologies/fleet.yaml``).

    Returns
    -------
    pl.DataFrame
        ``policy``, ``mode`` (``fast`` or ``request``), ``requests``, the scores of
        :func:`policies.scoring.score`, and per policy ``*_gap``: request level minus fast
        mode (relative for GPU-hours, absolute otherwise), on the ``request`` rows.
    """
    trace = scenario.requests(first_s, span_s)
    load = load_from_requests(trace.requests, trace.start, scenario.load.interval_s)
    start = initial_cluster(scenario.cluster, curation.inputs, load)
    topology = topology or load_topology(FLEET_TOPOLOGY_PATH)
    inputs = curation.inputs
    needs = placement_requirements(
        inputs.of_role("prefill")[0].key, inputs.of_role("decode")[0].key, inputs.pd_ratio
    )
    rows = []
    for name, build in builders.items():
        for mode in ("fast", "request"):
            controller = build(curation, load)
            lifecycle = INSTANT if isinstance(controller, Oracle) else scenario.lifecycle
            plant = (
                FluidLoop(load, start, lifecycle=lifecycle)
                if mode == "fast"
                else RequestPlant(
                    trace.requests,
                    start,
                    service=scenario.service,
                    start=trace.start,
                    topology=topology,
                    requirements=needs,
                    interval_s=load.interval_s,
                    lifecycle=lifecycle,
                )
            )
            run = run_controller(plant, controller, control_interval_s=scenario.control_interval_s)
            scores = score(run, scenario.slo, pd_ratio=curation.inputs.pd_ratio)
            rows.append({"policy": name, "mode": mode, "requests": trace.requests.height} | scores)
    frame = pl.DataFrame(rows)
    fast = frame.filter(pl.col("mode") == "fast")
    gaps = [
        (pl.col("gpu_hours") / pl.col("gpu_hours_fast") - 1).alias("gpu_hours_gap"),
        *((pl.col(c) - pl.col(f"{c}_fast")).alias(f"{c}_gap") for c in COMPARED[1:]),
    ]
    request = (
        frame.filter(pl.col("mode") == "request")
        .join(fast.select("policy", *COMPARED), on="policy", suffix="_fast")
        .with_columns(gaps)
        .drop(f"{c}_fast" for c in COMPARED)
    )
    return pl.concat([fast, request], how="diagonal").sort("policy", "mode")
