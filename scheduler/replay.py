"""Replay a run of per-cycle instance targets through the scheduler.

A policy says how many instances each role should have; the scheduler takes deltas. Replaying
differences every cycle's targets against the state the previous cycle actually reached, so a
shortfall is asked for again next cycle instead of being forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import polars as pl

from scheduler.frames import outcomes_to_frame, plan_to_frame
from scheduler.placement import ScaleRequest, place_cycle
from scheduler.requirements import ServiceRequirements
from scheduler.state import PlacementState
from scheduler.topology import Topology

#: Columns :func:`replay_targets` needs.
TARGET_COLUMNS = ("cycle", "service", "target_prefill", "target_decode")
#: Columns of a policy's decisions as the pipeline stores them (``scaling_decisions``: the
#: policy loop's per-cycle counts before and after, and the service), which
#: :func:`targets_from_decisions` turns into targets.
DECISION_COLUMNS = (
    "ts",
    "service",
    "current_prefill",
    "current_decode",
    "next_prefill",
    "next_decode",
)

#: Columns of :attr:`ReplayResult.instances`.
INSTANCES_SCHEMA: dict[str, pl.DataType] = {
    "cycle": pl.Int64(),
    "service": pl.String(),
    "prefill_instances": pl.Int64(),
    "decode_instances": pl.Int64(),
    "deployment_groups": pl.Int64(),
}


@dataclass(frozen=True)
class ReplayResult:
    """What a replay produced.

    Attributes
    ----------
    plan : pl.DataFrame
        Every cycle's allocation records (:data:`scheduler.frames.PLAN_SCHEMA`), cycle order.
    outcomes : pl.DataFrame
        Every request with placed and shortfall instances (:data:`scheduler.frames.OUTCOME_SCHEMA`).
    instances : pl.DataFrame
        Per cycle and targeted service, the instances actually running after the cycle
        (:data:`INSTANCES_SCHEMA`): what a simulated cluster should run, not what was asked.
    state : PlacementState
        The state after the last cycle.
    """

    plan: pl.DataFrame
    outcomes: pl.DataFrame
    instances: pl.DataFrame
    state: PlacementState


def replay_targets(
    topology: Topology,
    targets: pl.DataFrame,
    requirements: dict[str, ServiceRequirements],
    *,
    state: PlacementState | None = None,
) -> ReplayResult:
    """Turn per-cycle instance targets into scale requests and place them cycle after cycle.

    Parameters
    ----------
    topology : Topology
    targets : pl.DataFrame
        Columns ``cycle`` (integer), ``service``, ``target_prefill``, ``target_decode``
        (non-negative integers); at most one row per cycle and service. A service absent from
        a cycle is left as it is.
    requirements : dict of str to ServiceRequirements
        Needs of every targeted service.
    state : PlacementState, optional
        Where to start; empty by default.

    Returns
    -------
    ReplayResult

    Raises
    ------
    ValueError
        If a column is missing, a value is null or negative, a (cycle, service) repeats, or a
        service has no requirements.
    """
    _check_targets(targets, requirements)
    state = state or PlacementState.empty()
    records, outcomes, instances = [], [], []
    rows = targets.select(TARGET_COLUMNS).sort("cycle", "service").iter_rows()
    for cycle, cycle_rows in groupby(rows, key=lambda row: row[0]):
        cycle_rows = list(cycle_rows)
        requests = [
            ScaleRequest(service, role, target - state.instances(service, role))
            for _, service, prefill, decode in cycle_rows
            for role, target in (("prefill", prefill), ("decode", decode))
        ]
        result = place_cycle(topology, state, requests, requirements, cycle=cycle)
        state = result.state
        records.extend(result.records)
        outcomes.extend(result.outcomes)
        instances.extend(
            (
                cycle,
                service,
                state.instances(service, "prefill"),
                state.instances(service, "decode"),
                len(state.groups_of(service)),
            )
            for _, service, _, _ in cycle_rows
        )
    return ReplayResult(
        plan=plan_to_frame(records),
        outcomes=outcomes_to_frame(outcomes),
        instances=pl.DataFrame(instances, schema=INSTANCES_SCHEMA, orient="row"),
        state=state,
    )


def targets_from_decisions(decisions: pl.DataFrame) -> pl.DataFrame:
    """Per-cycle targets (:data:`TARGET_COLUMNS`) from decisions (:data:`DECISION_COLUMNS`).

    Cycle 0 places each service's counts before its first decision (the deployment the policy
    started from); every decision is then a cycle asking for its ``next_*`` counts, cycles
    numbered in time order across services (decisions at one instant share a cycle).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions lack column(s) {missing}; need {list(DECISION_COLUMNS)}")
    ordered = decisions.sort("ts", "service")
    starting = ordered.group_by("service", maintain_order=True).first()
    return pl.concat(
        [
            starting.select(
                pl.lit(0, pl.Int64).alias("cycle"),
                "service",
                pl.col("current_prefill").alias("target_prefill"),
                pl.col("current_decode").alias("target_decode"),
            ),
            ordered.select(
                pl.col("ts").rank("dense").cast(pl.Int64).alias("cycle"),
                "service",
                pl.col("next_prefill").alias("target_prefill"),
                pl.col("next_decode").alias("target_decode"),
            ),
        ]
    )


def instance_hours(decisions: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per service and role, the instance-hours the decisions asked for and those the placement
    ran, from the first decision to the last.

    A scale-in the scheduler kept back (a Deployment Group would leave its P/D ratio) keeps
    instances running that the policy had released, and a shortfall runs fewer: what the
    policy's own GPU-hours leave out. Cycle ``k`` (:func:`targets_from_decisions`) lasts from
    its decision to the next one.

    Parameters
    ----------
    decisions : pl.DataFrame
        :data:`DECISION_COLUMNS`: the decisions the placement replayed.
    outcomes : pl.DataFrame
        That replay's outcomes (``cycle``, ``service``, ``role``, ``action``,
        ``placed_instances``), cycle 0 placing the starting deployment.

    Returns
    -------
    pl.DataFrame
        ``service``, ``role``, ``asked_instance_hours``, ``placed_instance_hours``.
    """
    spans = (
        decisions.select(pl.col("ts").rank("dense").cast(pl.Int64).alias("cycle"), "ts")
        .unique()
        .sort("cycle")
        .with_columns(hours=(pl.col("ts").shift(-1) - pl.col("ts")).dt.total_seconds() / 3600)
        .drop_nulls("hours")
    )
    asked = (
        targets_from_decisions(decisions)
        .unpivot(index=["cycle", "service"], variable_name="role", value_name="asked")
        .with_columns(pl.col("role").str.strip_prefix("target_"))
    )
    placed = outcomes.group_by("cycle", "service", "role").agg(
        pl.when(pl.col("action") == "scale_out")
        .then(pl.col("placed_instances"))
        .otherwise(-pl.col("placed_instances"))
        .sum()
        .alias("placed")
    )
    pools = asked.select("service", "role").unique()
    running = (
        pl.concat([asked.select("cycle"), placed.select("cycle")])
        .unique()
        .join(pools, how="cross")
        .join(asked, on=["cycle", "service", "role"], how="left")
        .join(placed, on=["cycle", "service", "role"], how="left")
        .sort("cycle")
        .with_columns(
            pl.col("asked").forward_fill().over("service", "role"),
            pl.col("placed").fill_null(0).cum_sum().over("service", "role"),
        )
    )
    return (
        running.join(spans, on="cycle")
        .group_by("service", "role")
        .agg(
            (pl.col("asked") * pl.col("hours")).sum().alias("asked_instance_hours"),
            (pl.col("placed") * pl.col("hours")).sum().alias("placed_instance_hours"),
        )
        .sort("service", "role")
    )


def _check_targets(targets: pl.DataFrame, requirements: dict[str, ServiceRequirements]) -> None:
    missing = [c for c in TARGET_COLUMNS if c not in targets.columns]
    if missing:
        raise ValueError(f"targets lack column(s) {missing}; need {list(TARGET_COLUMNS)}")
    frame = targets.select(TARGET_COLUMNS)
    nulls = [c for c in TARGET_COLUMNS if frame[c].null_count()]
    if nulls:
        raise ValueError(f"targets have nulls in {nulls}")
    for column in ("cycle", "target_prefill", "target_decode"):
        if not frame.schema[column].is_integer():
            raise ValueError(f"targets.{column} must be integers, got {frame.schema[column]}")
    negative = frame.filter((pl.col("target_prefill") < 0) | (pl.col("target_decode") < 0))
    if negative.height:
        raise ValueError(f"negative targets, first: {negative.row(0, named=True)}")
    repeated = frame.filter(pl.struct("cycle", "service").is_duplicated()).sort("cycle", "service")
    if repeated.height:
        raise ValueError(f"targets repeat a (cycle, service), first: {repeated.row(0, named=True)}")
    unknown = sorted(set(frame["service"]) - set(requirements))
    if unknown:
        raise ValueError(f"no ServiceRequirements for service(s) {unknown}")
