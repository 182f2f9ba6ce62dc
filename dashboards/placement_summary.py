"""The placement page in words: what the scheduler's terms mean, and where the chosen policy's
instances went, computed from the placement plan and its outcomes.

The scheduler's vocabulary comes from the paper (§5.4) and is not a capacity planner's, so the
page says what each term means before it uses it (docs/scheduler.md has the full model).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from scheduler import instance_hours
from scheduler.subgroups import Priority

#: Each term the placement page uses, and what it means.
GLOSSARY = (
    (
        "S1 mini-pod, S2 big-pod",
        "The two switch tiers of the network: an S1 mini-pod is the nodes under one lower-tier "
        "switch, an S2 big-pod the S1 mini-pods under one upper-tier switch. A prefill instance "
        "sends every request's KV cache to a decode instance, so the closer the two sit, the "
        "fewer switches that traffic crosses.",
    ),
    (
        "Affinity",
        "How close a service's prefill and decode instances must stay: within one S2 big-pod "
        "(s2, the default), within one S1 mini-pod (s1), or anywhere (none). The S2 or S1 an "
        "instance group is held to is its affinity domain.",
    ),
    (
        "Deployment Group",
        "Prefill and decode instances of one service placed together inside one affinity "
        "domain, kept near the policy's P/D ratio so each prefill has the decode capacity it "
        "feeds. A service runs as one or more Deployment Groups.",
    ),
    (
        "RDMA subgroup and its priority",
        "The nodes KV can move between over RDMA, classed by how they mix GPU types: an S2 of "
        "one GPU type (low priority), the single-type S1s of an S2 that mixes types (medium), "
        "or one S1 that mixes types (high). Mixed places are scarce and are what a service "
        "needing two GPU types relies on, so the scheduler fills low before medium before high.",
    ),
    (
        "Scale-out, scale-in, shortfall",
        "A scale-out places new instances, a scale-in removes running ones; a shortfall is what "
        "a scale-out asked for and the topology could not host. A scale-in that would leave a "
        "Deployment Group off its P/D ratio is kept back and counted too.",
    ),
)


def placement_lines(
    placement: pl.DataFrame,
    placement_outcomes: pl.DataFrame,
    decisions: pl.DataFrame,
    gpus_per_instance: Mapping[str, int],
) -> list[str]:
    """Where the instances went, in which subgroups, whether affinity held, what fell short,
    and what that changed in GPU-hours.

    Parameters
    ----------
    placement : pl.DataFrame
        The placement plan (``scheduler.plan_to_frame``): a row per action, Deployment Group,
        role, node and instance size, with ``s2``, ``s1``, ``gpu_type``, ``instances``,
        ``subgroup_priority`` and ``affinity_satisfied``.
    placement_outcomes : pl.DataFrame
        Per cycle, role and action the ``requested_instances``, ``placed_instances`` and
        ``shortfall_instances`` (``scheduler.outcomes_to_frame``).
    decisions : pl.DataFrame
        The decisions placed (``scaling_decisions``).
    gpus_per_instance : mapping of str to int
        GPUs of one instance, per role.

    Returns
    -------
    list of str
        Cycles, instances placed and removed, Deployment Groups, S2 and S1 used; per role the
        GPU types its instances got; the RDMA subgroups scale-outs used; affinity; shortfall
        per action; the GPU-hours the placement ran against those the policy asked for.
    """
    if placement.is_empty():
        return ["Placement: nothing was placed in this run."]
    moved = dict(placement.group_by("action").agg(pl.col("instances").sum()).iter_rows())
    lines = [
        f"Placement: {placement['cycle'].n_unique()} cycle(s) (cycle 0 places the starting "
        f"cluster, each later one a decision of the policy): "
        f"{moved.get('scale_out', 0):,} instances placed, {moved.get('scale_in', 0):,} removed, "
        f"in {placement['deployment_group'].n_unique()} Deployment Group(s) across "
        f"{placement['s2'].n_unique()} S2 big-pod(s) and {placement['s1'].n_unique()} S1 "
        "mini-pod(s)."
    ]
    out = placement.filter(pl.col("action") == "scale_out")
    for (role,), rows in sorted(out.partition_by("role", as_dict=True).items()):
        types = rows.group_by("gpu_type").agg(pl.col("instances").sum()).sort("gpu_type")
        lines.append(
            f"{role.capitalize()} instances placed on "
            + ", ".join(f"{gpu} ({n:,})" for gpu, n in types.iter_rows())
            + "."
        )
    subgroups = out.group_by("subgroup_priority").agg(pl.col("instances").sum())
    lines.append(
        "RDMA subgroups the scale-outs used: "
        + ", ".join(
            f"{p} priority {n:,} instances"
            for p, n in sorted(subgroups.iter_rows(), key=lambda pair: Priority[pair[0].upper()])
        )
        + "."
    )
    outside = placement.filter(~pl.col("affinity_satisfied"))
    lines.append(
        "Affinity: every instance lies inside its Deployment Group's domain."
        if outside.is_empty()
        else f"Affinity: MISS: {outside['instances'].sum():,} instance(s) outside their "
        "Deployment Group's domain."
    )
    lines += _shortfall_lines(placement_outcomes)
    lines.append(_gpu_hours_line(decisions, placement_outcomes, gpus_per_instance))
    return lines


def _gpu_hours_line(
    decisions: pl.DataFrame, outcomes: pl.DataFrame, gpus_per_instance: Mapping[str, int]
) -> str:
    hours = instance_hours(decisions, outcomes).with_columns(
        gpus=pl.col("role").replace_strict(dict(gpus_per_instance), return_dtype=pl.Float64)
    )
    asked = float((hours["asked_instance_hours"] * hours["gpus"]).sum())
    placed = float((hours["placed_instance_hours"] * hours["gpus"]).sum())
    if asked == 0:
        return "GPU-hours: the decisions span no time, so placement changed none."
    roles = "; ".join(
        f"{role} {ran:,.0f} instance-hours against {wanted:,.0f} asked ({ran / wanted - 1:+.1%})"
        for role, wanted, ran in hours.select(
            "role", "asked_instance_hours", "placed_instance_hours"
        ).iter_rows()
        if wanted
    )
    return (
        f"GPU-hours from the first decision to the last: the placement ran {placed:,.0f} where "
        f"the policy asked for {asked:,.0f} ({placed / asked - 1:+.2%}; {roles}). Kept-back "
        "scale-ins add to it, shortfalls take from it; the backtest's figures count what the "
        "policy asked."
    )


def _shortfall_lines(outcomes: pl.DataFrame) -> list[str]:
    totals = (
        outcomes.group_by("action")
        .agg(
            pl.col("requested_instances", "placed_instances", "shortfall_instances").sum(),
            cycles=pl.col("cycle").filter(pl.col("shortfall_instances") > 0).n_unique(),
        )
        .sort("action", descending=True)  # scale_out first
    )
    return [
        f"{action.replace('_', '-').capitalize()}: {asked:,} instances asked, {placed:,} done, "
        f"{short:,} short in {cycles} cycle(s)"
        + (" (kept back to hold the P/D ratio)" if action == "scale_in" and short else "")
        + "."
        for action, asked, placed, short, cycles in totals.iter_rows()
    ]
