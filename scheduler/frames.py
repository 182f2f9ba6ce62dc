"""Placement results as polars frames: the plan (what moved where) and the request outcomes.

They are two frames because they have different grains: a plan row is one node's change, an
outcome row one request, and a request that placed nothing has no plan row but still a
shortfall to report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple

import polars as pl

from scheduler.placement import AllocationRecord, RequestOutcome

#: Columns of :func:`plan_to_frame`, in the order of :class:`AllocationRecord`'s fields.
PLAN_SCHEMA: dict[str, pl.DataType] = {
    "cycle": pl.Int64(),
    "service": pl.String(),
    "role": pl.String(),
    "action": pl.String(),
    "deployment_group": pl.String(),
    "node_id": pl.String(),
    "s2": pl.String(),
    "s1": pl.String(),
    "gpu_type": pl.String(),
    "gpus": pl.Int64(),
    "instances": pl.Int64(),
    "subgroup_priority": pl.String(),
    "affinity_satisfied": pl.Boolean(),
}

#: Columns of :func:`outcomes_to_frame`.
OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "cycle": pl.Int64(),
    "service": pl.String(),
    "role": pl.String(),
    "action": pl.String(),
    "requested_instances": pl.Int64(),
    "placed_instances": pl.Int64(),
    "shortfall_instances": pl.Int64(),
}


def plan_to_frame(records: Iterable[AllocationRecord]) -> pl.DataFrame:
    """One row per allocation record, in the order given (the order decisions were taken).

    Parameters
    ----------
    records : iterable of AllocationRecord
        From :attr:`CycleResult.records`, possibly of several cycles concatenated.

    Returns
    -------
    pl.DataFrame
        Columns of :data:`PLAN_SCHEMA`. ``action`` is ``scale_out`` or ``scale_in``;
        ``instances`` and ``gpus`` are always positive (the action gives the direction);
        ``subgroup_priority`` is ``low``, ``medium`` or ``high``.
    """
    return pl.DataFrame([astuple(r) for r in records], schema=PLAN_SCHEMA, orient="row")


def outcomes_to_frame(outcomes: Iterable[RequestOutcome]) -> pl.DataFrame:
    """One row per non-zero scale request with what was placed and the shortfall.

    Parameters
    ----------
    outcomes : iterable of RequestOutcome
        From :attr:`CycleResult.outcomes`.

    Returns
    -------
    pl.DataFrame
        Columns of :data:`OUTCOME_SCHEMA`; ``shortfall_instances`` is requested minus placed,
        never negative.
    """
    rows = [(*astuple(o), o.shortfall_instances) for o in outcomes]
    return pl.DataFrame(rows, schema=OUTCOME_SCHEMA, orient="row")
