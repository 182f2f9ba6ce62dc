"""The control loop every policy runs in: plant telemetry -> :class:`Window` -> decision -> plant.

One loop for every controller and every plant. A plant advances one telemetry interval at a
time and takes :class:`simulator.closed_loop.ScaleAction` s between intervals: the fast-mode
:class:`simulator.fluid_loop.FluidLoop` for fleet backtests; any object with the same four
members works. The loop builds what a real controller would observe (metrics late by
``lag_s``, instance counts live, missing scrapes as missing metrics), asks the controller,
turns its targets into scale actions, and logs every change with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import polars as pl

from policies.controller import Controller, Decision, PoolKey, PoolView, Window
from simulator.closed_loop import ScaleAction
from simulator.cluster import PoolSpec
from simulator.fluid_load import FluidLoad
from simulator.fluid_loop import LoopTelemetry, PoolInterval

#: Default age of the newest metrics at decision time: a 15 s scrape plus a 15 s rule
#: evaluation (Prometheus' defaults for KEDA/HPA-style external metrics are of this order).
DEFAULT_LAG_S = 30.0

#: Columns of :attr:`ControlRun.decisions`: one row per pool whose count a decision changed.
DECISION_LOG_SCHEMA: dict[str, pl.DataType] = {
    "t_s": pl.Float64(),
    "role": pl.String(),
    "gpu_type": pl.String(),
    "gpus_per_instance": pl.Int64(),
    "from_instances": pl.Int64(),
    "to_instances": pl.Int64(),
    "reason": pl.String(),
}


#: Columns of :meth:`ControlRun.role_targets`.
ROLE_TARGETS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "current_prefill": pl.Int64(),
    "current_decode": pl.Int64(),
    "next_prefill": pl.Int64(),
    "next_decode": pl.Int64(),
    "reason": pl.String(),
}


class Plant(Protocol):
    """What the loop drives (see :class:`simulator.fluid_loop.FluidLoop`)."""

    load: FluidLoad

    @property
    def pools(self) -> tuple[PoolSpec, ...]: ...

    def advance(self) -> tuple[PoolInterval, ...]: ...

    def scale(self, actions: Sequence[ScaleAction]) -> None: ...

    def telemetry(self) -> LoopTelemetry: ...


@dataclass(frozen=True)
class ControlRun:
    """A controller's run on a plant.

    Attributes
    ----------
    telemetry : LoopTelemetry
        What the plant ran and reported, per interval.
    decisions : pl.DataFrame
        :data:`DECISION_LOG_SCHEMA`: every change of a pool's count, with its reason.
    wanted : np.ndarray
        ``(pools, decisions)`` instances each decision wanted per pool.
    holds : int
        Decisions that changed nothing.
    """

    telemetry: LoopTelemetry
    decisions: pl.DataFrame
    wanted: np.ndarray
    holds: int

    def role_targets(self) -> pl.DataFrame:
        """The decisions that changed a count, per role (:data:`ROLE_TARGETS_SCHEMA`): what
        the scheduler is asked to place, cycle by cycle."""
        load = self.telemetry.load
        log = self.decisions.with_columns(
            ts=pl.lit(load.start) + pl.duration(microseconds=(pl.col("t_s") * 1e6).cast(pl.Int64))
        )
        if log.is_empty():
            return pl.DataFrame(schema=ROLE_TARGETS_SCHEMA)
        roles = self.telemetry.pools
        start = {
            role: sum(p.count for p in roles if p.role == role) for role in ("prefill", "decode")
        }
        per_role = log.group_by("ts", "role").agg(
            pl.col("from_instances").sum(), pl.col("to_instances").sum(), pl.col("reason").first()
        )
        wide = (
            per_role.pivot("role", index="ts", values=["from_instances", "to_instances"])
            .join(per_role.group_by("ts").agg(pl.col("reason").first()), on="ts")
            .sort("ts")
        )
        rows = []
        current = dict(start)
        for row in wide.iter_rows(named=True):
            before = dict(current)
            for role in ("prefill", "decode"):
                to = row.get(f"to_instances_{role}")
                if to is not None:
                    current[role] = to
            rows.append(
                (
                    row["ts"],
                    before["prefill"],
                    before["decode"],
                    current["prefill"],
                    current["decode"],
                    row["reason"],
                )
            )
        return pl.DataFrame(rows, schema=ROLE_TARGETS_SCHEMA, orient="row")


def run_controller(
    plant: Plant,
    controller: Controller,
    *,
    control_interval_s: float,
    lag_s: float = DEFAULT_LAG_S,
    missing: frozenset[int] = frozenset(),
) -> ControlRun:
    """Run ``controller`` on ``plant`` over the plant's whole load.

    Parameters
    ----------
    plant : Plant
    controller : Controller
    control_interval_s : float
        Decision period; a whole number of the plant's telemetry intervals.
    lag_s : float
        Age of the newest metrics at decision time; rounded to whole intervals.
    missing : frozenset of int
        Telemetry intervals whose metrics never arrive (failed scrapes): a window touching one
        is delivered without metrics.

    Returns
    -------
    ControlRun
    """
    load = plant.load
    interval_s = load.interval_s
    per_control = control_interval_s / interval_s
    if per_control < 1 or not math.isclose(per_control, round(per_control)):
        raise ValueError(
            f"control_interval_s {control_interval_s} must be a whole number of the "
            f"telemetry interval {interval_s}"
        )
    per_control = round(per_control)
    lag = round(lag_s / interval_s)
    keys: list[PoolKey] = [(p.role, p.gpu_type, p.tp) for p in plant.pools]
    offered = OfferedLoad.of(load)
    history: list[tuple[PoolInterval, ...]] = []
    rows: list[tuple] = []
    wanted: list[list[int]] = []
    holds = 0
    for t in range(load.count):
        history.append(plant.advance())
        if (t + 1) % per_control:
            continue
        window = observe_window(
            history, keys, offered, t, per_control, lag, missing, control_interval_s
        )
        decision = controller.observe(window)
        current = {view.key: view.instances for view in window.pools}
        actions, changed = _actions(decision, current, window.t_s)
        rows.extend(changed)
        holds += not changed
        wanted.append([decision.targets.get(key, current[key]) for key in keys])
        if actions:
            plant.scale(actions)
    return ControlRun(
        telemetry=plant.telemetry(),
        decisions=pl.DataFrame(rows, schema=DECISION_LOG_SCHEMA, orient="row"),
        wanted=np.array(wanted, dtype=np.int64).T.reshape(len(keys), -1),
        holds=holds,
    )


class OfferedLoad:
    """The router's per-interval counts (requests, prompt and output tokens), sliced every
    decision, so kept as lists; intervals in ``missing`` were not recorded.

    Built from a plant's :class:`FluidLoad` (:meth:`of`) or from recorded ``service_load``
    rows (advisory mode, :mod:`policies.advise`).
    """

    def __init__(
        self,
        start: datetime,
        interval_s: float,
        requests: list[float],
        prompt_tokens: list[float],
        output_tokens: list[float],
        missing: frozenset[int] = frozenset(),
    ) -> None:
        self.start = start
        self.interval_s = interval_s
        self.requests = requests
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.missing = missing

    @classmethod
    def of(cls, load: FluidLoad) -> OfferedLoad:
        return cls(
            load.start,
            load.interval_s,
            load.requests.tolist(),
            load.prompt_tokens.tolist(),
            (load.decode_tokens + load.requests).tolist(),
        )

    def over(self, first: int, last: int) -> dict[str, float] | None:
        """Router-side rates over intervals ``first`` .. ``last``; None if one is missing."""
        if self.missing and any(i in self.missing for i in range(first, last + 1)):
            return None
        span_s = (last - first + 1) * self.interval_s
        return {
            "request_rate_rps": sum(self.requests[first : last + 1]) / span_s,
            "input_tps": sum(self.prompt_tokens[first : last + 1]) / span_s,
            "output_tps": sum(self.output_tokens[first : last + 1]) / span_s,
        }


class PoolSample(Protocol):
    """One pool in one interval, as a window reads it: a plant's
    :class:`simulator.fluid_loop.PoolInterval` or a recorded interval (advisory mode)."""

    @property
    def ready(self) -> int: ...

    @property
    def starting(self) -> int: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...

    @property
    def reporting(self) -> int: ...


def observe_window(
    history: Sequence[Sequence[PoolSample]],
    keys: Sequence[PoolKey],
    offered: OfferedLoad,
    t: int,
    per_control: int,
    lag: int,
    missing: frozenset[int],
    control_interval_s: float,
) -> Window:
    """The observation at the end of interval ``t``: live counts, metrics of the control
    window that ended ``lag`` intervals ago (per-instance means over the intervals of that
    window with ready instances, and how many instances reported them); none when the window
    starts before interval 0 or touches an interval in ``missing``.

    ``history[i][j]`` is pool ``keys[j]`` in interval ``i``. Shared by :func:`run_controller`
    and advisory mode's replay of recorded telemetry, so both observe alike.
    """
    last = t - lag
    first = last - per_control + 1
    observed = range(max(first, 0), last + 1)
    fresh = first >= 0 and not (missing and any(i in missing for i in observed))
    now = history[t]
    pools = []
    for j, key in enumerate(keys):
        metrics, reporting = None, None
        if fresh:
            samples = [history[i][j] for i in observed if history[i][j].reporting > 0]
            if len(samples) == 1:
                metrics, reporting = samples[0].metrics, samples[0].reporting
            elif samples:
                metrics = {
                    name: sum(s.metrics[name] for s in samples) / len(samples)
                    for name in samples[0].metrics
                }
                reporting = sum(s.reporting for s in samples) / len(samples)
        pools.append(PoolView(key, now[j].ready, now[j].starting, metrics, reporting))
    t_s = (t + 1) * offered.interval_s
    return Window(
        now=offered.start + timedelta(seconds=t_s),
        t_s=t_s,
        control_interval_s=control_interval_s,
        lag_s=lag * offered.interval_s,
        pools=tuple(pools),
        load=offered.over(first, last) if fresh else None,
    )


def _actions(
    decision: Decision, current: dict[PoolKey, int], t_s: float
) -> tuple[list[ScaleAction], list[tuple]]:
    actions, rows = [], []
    for key, target in decision.targets.items():
        if key not in current:
            raise ValueError(f"decision names pool {key}, which the plant does not run")
        if target < 0:
            raise ValueError(f"decision wants {target} instances of {key}")
        delta = target - current[key]
        if delta:
            role, gpu_type, tp = key
            actions.append(ScaleAction(role, gpu_type, tp, delta, keep_warm_s=decision.keep_warm_s))
            rows.append((t_s, role, gpu_type, tp, current[key], target, decision.reason))
    return actions, rows
