"""A published policy rolled out on a simulated cluster: what a cluster that runs the exports
would look like.

``heteroscale simulate --policy SPEC`` replays a trace at request level while the spec's
HeteroScale scales the cluster, every action placed on a topology (the request-level plant of
:mod:`policies.request_plant`, the loop of :mod:`policies.loop`). Served on ``/metrics``, the
run is what a Prometheus evaluating the exported rules would scrape from a cluster whose
autoscalers follow them, so the rules can be checked against the policy's own decisions
(docs/deploy.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from policies.controller import DECODE, PREFILL, PoolKey
from policies.heteroscale import HeteroScale
from policies.loop import DEFAULT_LAG_S, run_controller
from policies.modes import placement_requirements
from policies.request_plant import RequestPlant
from policies.spec import PolicySpec, policy_inputs
from scheduler import FLEET_TOPOLOGY_PATH, Topology, load_topology
from simulator import ClusterSpec, LifecycleSpec, SimulationResult, Trace


@dataclass(frozen=True)
class Rollout:
    """The run, and the policy's decisions that changed a role's count
    (:data:`policies.loop.ROLE_TARGETS_SCHEMA` with ``service``)."""

    result: SimulationResult
    decisions: pl.DataFrame


def roll_out(
    spec: PolicySpec,
    trace: Trace,
    cluster: ClusterSpec,
    *,
    topology: Topology | None = None,
    lifecycle: LifecycleSpec | None = None,
    interval_s: float = 15.0,
    lag_s: float = DEFAULT_LAG_S,
) -> Rollout:
    """Replay ``trace`` on ``cluster`` (its starting counts) under the spec's policy.

    Raises
    ------
    ValueError
        When the cluster does not run exactly the spec's pools (:func:`check_pools`), or the
        topology cannot host the starting cluster.
    """
    keys = check_pools(spec, cluster)
    plant = RequestPlant(
        trace.requests,
        cluster,
        service=spec.service,
        start=trace.start,
        topology=topology or load_topology(FLEET_TOPOLOGY_PATH),
        requirements=placement_requirements(keys[PREFILL], keys[DECODE], spec.pd_ratio),
        interval_s=interval_s,
        lifecycle=lifecycle,
    )
    controller = HeteroScale(policy_inputs(spec), spec.controller)
    run = run_controller(plant, controller, control_interval_s=spec.control_interval_s, lag_s=lag_s)
    decisions = run.role_targets().with_columns(service=pl.lit(spec.service))
    return Rollout(plant.result(), decisions)


def check_pools(spec: PolicySpec, cluster: ClusterSpec) -> dict[str, PoolKey]:
    """The spec's pool per role, when the cluster runs exactly those.

    Raises
    ------
    ValueError
        Naming both sides otherwise: a policy runs only on the hardware it was curated for.
    """
    keys = {
        role: (role, spec.pool(role).gpu_type, spec.pool(role).gpus_per_instance)
        for role in (PREFILL, DECODE)
    }
    running = sorted(
        (p.role, p.gpu_type, p.tp) for p in (*cluster.prefill_pools, *cluster.decode_pools)
    )
    if running != sorted(keys.values()):
        raise ValueError(
            f"the policy of {spec.service} was curated for {_pools(keys.values())}; "
            f"the cluster runs {_pools(running)}"
        )
    return keys


def _pools(keys) -> str:
    return ", ".join(f"{role} {gpu_type} x{tp}" for role, gpu_type, tp in keys)
