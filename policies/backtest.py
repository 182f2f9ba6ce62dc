"""Closed-loop backtest: decisions -> placement -> simulated cluster -> telemetry -> decisions.

Unlike the open-loop replay (:mod:`policies.replay`), every decision here reaches the cluster:
the scheduler places it on the topology (Algorithm 4), the simulator starts or drains the
instances the placement made (with their startup delay), and the next decision observes the
decode TPS that the resized cluster produced. An instance's KV transfers run at the bandwidth
its Deployment Group's placement allows (:mod:`scheduler.bandwidth`: about 20% less across
S2 switches), so a placement that scatters a group costs it latency in the backtest.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from policies.config import CoordinatedPolicyConfig
from policies.coordinated import HOLD, PoolCounts, decide
from policies.observation import decode_tps_windows
from policies.replay import DECISIONS_SCHEMA, decision_fields
from scheduler import (
    SCALE_OUT,
    AllocationRecord,
    PlacementState,
    ScaleRequest,
    ServiceRequirements,
    Topology,
    outcomes_to_frame,
    place_cycle,
    plan_to_frame,
)
from scheduler.bandwidth import group_kv_bandwidth_factor
from simulator import ClusterSpec, LifecycleSpec, SimulationResult
from simulator.closed_loop import ClosedLoopSimulation, ScaleAction

#: Columns of :attr:`Backtest.decisions`: the replay's, where ``next_*`` are the counts the
#: placement reached, plus what the placement fell short of and the KV bandwidth it gave.
BACKTEST_DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    **DECISIONS_SCHEMA,
    "shortfall_instances": pl.Int64(),
    "kv_bandwidth_factor": pl.Float64(),
}


@dataclass(frozen=True)
class Backtest:
    """What a closed-loop backtest produced.

    Attributes
    ----------
    decisions : pl.DataFrame
        One row per control interval with an observation (:data:`BACKTEST_DECISIONS_SCHEMA`);
        ``kv_bandwidth_factor`` is the mean factor of the instances the decision added (null
        when it added none).
    run : SimulationResult
        The simulated cluster's telemetry and request outcomes under the policy.
    plan, outcomes : pl.DataFrame
        The placement records and request outcomes of every cycle (cycle 0 places the
        starting cluster; cycle ``k`` is the decision at the end of control interval ``k``).
    """

    decisions: pl.DataFrame
    run: SimulationResult
    plan: pl.DataFrame
    outcomes: pl.DataFrame


def run_backtest(
    requests: pl.DataFrame,
    cluster: ClusterSpec,
    config: CoordinatedPolicyConfig,
    *,
    service: str,
    start: datetime,
    topology: Topology,
    requirements: ServiceRequirements,
    interval_s: float = 15.0,
    lifecycle: LifecycleSpec | None = None,
    keep_warm_s: float = 0.0,
) -> Backtest:
    """Drive a simulated cluster with the coordinated controller, placing every decision.

    Parameters
    ----------
    requests : pl.DataFrame
        Canonical request frame, replayed at its arrival times.
    cluster : ClusterSpec
        The starting cluster; the topology must host it on the GPU types it runs.
    config : CoordinatedPolicyConfig
        The controller; ``control_interval_s`` must be a whole number of ``interval_s``.
    service : str
    start : datetime
        Time-zone-aware instant of ``arrival_s == 0``.
    topology : Topology
    requirements : ServiceRequirements
        The service's placement needs (GPU types, affinity, P/D ratio of its groups).
    interval_s : float, default 15
        Telemetry interval.
    lifecycle : LifecycleSpec, optional
        Startup delays of new instances (the simulator's defaults when omitted).
    keep_warm_s : float, default 0
        How long an instance removed by scale-in stays warm (soft scale-in, §5.5).

    Returns
    -------
    Backtest

    Raises
    ------
    ValueError
        If the control interval is not a multiple of the telemetry interval, or the topology
        cannot host the starting cluster on the GPU types and sizes it runs.

    Notes
    -----
    The controller's current counts are the instances placed, so a shortfall (the topology
    is full) is asked for again at the next decision. The simulator's starting instances
    transfer KV at full bandwidth; cycle 0's plan still records where they sit. On scale-in
    the simulator drains the least-loaded instances of the pool the scheduler shrank, which
    may not be the very instances the scheduler freed: factors of the instances left can
    differ slightly from their groups' placement.
    """
    intervals_per_control = config.control_interval_s / interval_s
    if not math.isclose(intervals_per_control, round(intervals_per_control)):
        raise ValueError(
            f"control_interval_s {config.control_interval_s} must be a multiple of "
            f"interval_s {interval_s}"
        )
    needs = {service: requirements}
    first = place_cycle(
        topology,
        PlacementState.empty(),
        [
            ScaleRequest(service, "prefill", sum(p.count for p in cluster.prefill_pools)),
            ScaleRequest(service, "decode", sum(p.count for p in cluster.decode_pools)),
        ],
        needs,
        cycle=0,
    )
    _check_hosts_cluster(first.records, cluster)
    state, records, outcomes = first.state, list(first.records), list(first.outcomes)
    sim = ClosedLoopSimulation(
        requests, cluster, service=service, start=start, interval_s=interval_s, lifecycle=lifecycle
    )
    end_s = float(requests["arrival_s"].max()) if requests.height else 0.0
    rows, last_action_cycle = [], None
    for cycle in range(1, math.floor(end_s / config.control_interval_s) + 1):
        frames = sim.advance(cycle * config.control_interval_s)
        observed = decode_tps_windows(
            frames.instance_samples,
            service=service,
            start=start + timedelta(seconds=(cycle - 1) * config.control_interval_s),
            control_interval_s=config.control_interval_s,
        )
        if observed.is_empty():
            continue
        current = PoolCounts(
            state.instances(service, "prefill"), state.instances(service, "decode")
        )
        since_s = (
            math.inf
            if last_action_cycle is None
            else (cycle - last_action_cycle) * config.control_interval_s
        )
        decode_tps = float(observed["decode_tps_observed"][0])
        decision = decide(decode_tps, current, config, since_last_action_s=since_s)
        row = {
            "cycle": cycle,
            **decision_fields(decode_tps, current, decision),
            "shortfall_instances": 0,
            "kv_bandwidth_factor": None,
        }
        if decision.action != HOLD:
            last_action_cycle = cycle
            placed = place_cycle(
                topology,
                state,
                [
                    ScaleRequest(service, "prefill", decision.target.prefill - current.prefill),
                    ScaleRequest(service, "decode", decision.target.decode - current.decode),
                ],
                needs,
                cycle=cycle,
            )
            state = placed.state
            records.extend(placed.records)
            outcomes.extend(placed.outcomes)
            actions = _scale_actions(placed.records, state, topology, keep_warm_s)
            sim.scale(actions)
            row["shortfall_instances"] = sum(
                o.requested_instances - o.placed_instances for o in placed.outcomes
            )
            row["kv_bandwidth_factor"] = _mean_added_factor(actions)
        rows.append(
            row
            | {
                "next_prefill": state.instances(service, "prefill"),
                "next_decode": state.instances(service, "decode"),
            }
        )
    return Backtest(
        decisions=_decisions_frame(rows, start, config.control_interval_s, service),
        run=sim.result(),
        plan=plan_to_frame(records),
        outcomes=outcomes_to_frame(outcomes),
    )


def _pool_key(record: AllocationRecord) -> tuple[str, str, int]:
    """(role, GPU type, TP) of a record's instances: the simulator's pool key."""
    return record.role, record.gpu_type, record.gpus // record.instances


def _check_hosts_cluster(records: tuple[AllocationRecord, ...], cluster: ClusterSpec) -> None:
    placed: Counter[tuple[str, str, int]] = Counter()
    for record in records:
        placed[_pool_key(record)] += record.instances
    running = Counter(
        {
            (p.role, p.gpu_type, p.tp): p.count
            for p in (*cluster.prefill_pools, *cluster.decode_pools)
        }
    )
    if placed != running:
        raise ValueError(
            f"the topology cannot host the starting cluster as it runs: it runs "
            f"{dict(running)} (role, GPU type, TP: instances) but placement made {dict(placed)}"
        )


def _scale_actions(
    records: tuple[AllocationRecord, ...],
    state: PlacementState,
    topology: Topology,
    keep_warm_s: float,
) -> list[ScaleAction]:
    """The simulator's actions for one cycle's records: scale-outs first (grouped by pool and
    the KV bandwidth factor of the Deployment Group they joined), then scale-ins by pool."""
    groups = {group.id: group for group in state.groups}
    added: Counter[tuple[str, str, int, float]] = Counter()
    removed: Counter[tuple[str, str, int]] = Counter()
    for record in records:
        if record.action == SCALE_OUT:
            factor = group_kv_bandwidth_factor(topology, groups[record.deployment_group])
            added[(*_pool_key(record), factor)] += record.instances
        else:
            removed[_pool_key(record)] += record.instances
    return [
        ScaleAction(role, gpu_type, tp, count, kv_bandwidth_factor=factor)
        for (role, gpu_type, tp, factor), count in sorted(added.items())
    ] + [
        ScaleAction(role, gpu_type, tp, -count, keep_warm_s=keep_warm_s)
        for (role, gpu_type, tp), count in sorted(removed.items())
    ]


def _mean_added_factor(actions: list[ScaleAction]) -> float | None:
    added = [(a.delta, a.kv_bandwidth_factor) for a in actions if a.delta > 0]
    count = sum(delta for delta, _ in added)
    return sum(delta * factor for delta, factor in added) / count if count else None


def _decisions_frame(
    rows: list[dict], start: datetime, control_interval_s: float, service: str
) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=BACKTEST_DECISIONS_SCHEMA)
    return (
        pl.DataFrame(rows)
        .with_columns(
            ts=pl.lit(start) + pl.duration(seconds=pl.col("cycle") * control_interval_s),
            service=pl.lit(service),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in BACKTEST_DECISIONS_SCHEMA.items()])
    )
