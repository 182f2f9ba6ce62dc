"""Advisory (shadow) mode: the published policy replayed on a cluster's recorded telemetry.

Before a platform team lets an autoscaler act, it wants to see what the autoscaler would have
done on its own traffic, next to what its cluster actually ran. :func:`advise` replays the
canonical telemetry of a store (ingested from a Prometheus or files, docs/ingest.md) through
HeteroScale built from a published :class:`policies.spec.PolicySpec`, and takes no action.

The replay is open loop. At the end of every recorded interval the controller observes the
window a live one would have seen, built by the loop every backtest uses
(:func:`policies.loop.observe_window`): what the cluster ran at that moment (instances ready,
and reporting but not ready as starting), metrics late by the loop's lag. Its answer is
recorded, never applied, so the next window shows the cluster's actual state again: the advice
is what the policy would ask for from where the cluster really was, interval by interval, not
the trajectory the cluster would have followed under the policy. That closed-loop
counterfactual is the fleet backtest's job (docs/policy.md).

An advised count is the decision applied to what ran, as :class:`policies.controller.Decision`
defines it: a hold (inside the hysteresis band, or waiting on a cool-down or on starting
instances) advises what ran. After a scale-out the policy waits out its scale-out cool-down
(in a cluster that followed it, its instances would be starting), so a shortfall that lasts
shows as advice once per cool-down, and GPU-hours advised count each action's step, not the
size the policy would have settled at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from policies.controller import DECODE, PREFILL, PoolKey
from policies.heteroscale import HeteroScale
from policies.loop import DEFAULT_LAG_S, OfferedLoad, observe_window
from policies.sizing import ceil_count
from policies.spec import PolicySpec, policy_inputs
from simulator.cluster import DEFAULT_STARTUP_S
from telemetry.schema import INSTANCE_METRIC_COLUMNS

ROLES = (PREFILL, DECODE)

#: Columns of the per-interval frame :func:`advise` returns, one row per recorded interval.
ADVICE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    **{
        f"{role}_{count}": pl.Int64()
        for role in ROLES
        for count in ("ready", "starting", "advised")
    },
    "gpus_actual": pl.Int64(),
    "gpus_advised": pl.Int64(),
    "ttft_p99_s": pl.Float64(),
    "tbt_p99_s": pl.Float64(),
    "breach": pl.Boolean(),
    "early_warning": pl.Boolean(),
    "reason": pl.String(),
}


@dataclass(frozen=True)
class RecordedPool:
    """One pool in one recorded interval, as :func:`policies.loop.observe_window` reads it:
    instances reporting ready and not ready (starting), and each metric's mean over the ready
    ones (NaN where none reported it)."""

    ready: int
    starting: int
    metrics: Mapping[str, float]

    @property
    def reporting(self) -> int:
        """The instances behind ``metrics``: the ready ones."""
        return self.ready


_ABSENT = RecordedPool(0, 0, {})


@dataclass(frozen=True)
class RoleAdvice:
    """One role's GPU-hours as run and as advised over the replay.

    ``intervals_advised_more`` / ``_fewer`` count intervals where the policy asked for more /
    fewer of the role's instances than ran (ready plus starting).
    """

    role: str
    gpu_hours_actual: float
    gpu_hours_advised: float
    gpu_hours_difference: float
    intervals_advised_more: int
    intervals_advised_fewer: int


@dataclass(frozen=True)
class AdviceSummary:
    """The replay in totals.

    Attributes
    ----------
    service : str
    intervals : int
        Recorded intervals replayed.
    missing_intervals : int
        Intervals of the span with no sample at all (a failed scrape): no advice, no
        GPU-hours, and windows touching them are delivered without metrics.
    interval_s, control_interval_s, lag_s : float
        The telemetry's interval, how often the policy decided, how late its metrics were.
    startup_s : float
        Startup delay of a new instance that sizes the early-warning lead.
    lead_intervals : int
        ``max(1, ceil(startup_s / interval_s))``: how far before a breach advice counts.
    gate_passed : bool
        The publication gate's verdict on the spec replayed (advice is given either way).
    gate : str
        The verdict in words.
    gpu_hours_actual, gpu_hours_advised, gpu_hours_difference : float
        Instances (ready plus starting: both are paid) x GPUs per instance x interval, as run
        and as advised; the difference is advised minus actual (negative: the policy saves).
    breach_intervals, breaches : int
        Intervals where the slowest pool's mean TTFT p99 (prefill) or TBT p99 (decode) was over
        the spec's SLO, and the episodes they form (a breach with none in the
        ``lead_intervals`` before it starts one).
    early_warnings : int
        Episodes in whose ``lead_intervals`` before the start the policy had advised more
        instances (both roles together) than ran.
    per_role : tuple of RoleAdvice
    """

    service: str
    intervals: int
    missing_intervals: int
    interval_s: float
    control_interval_s: float
    lag_s: float
    startup_s: float
    lead_intervals: int
    gate_passed: bool
    gate: str
    gpu_hours_actual: float
    gpu_hours_advised: float
    gpu_hours_difference: float
    breach_intervals: int
    breaches: int
    early_warnings: int
    per_role: tuple[RoleAdvice, ...]


def advise(
    samples: pl.DataFrame,
    load: pl.DataFrame | None,
    spec: PolicySpec,
    *,
    lag_s: float = DEFAULT_LAG_S,
    startup_s: float = DEFAULT_STARTUP_S,
) -> tuple[pl.DataFrame, AdviceSummary]:
    """Replay one service's recorded telemetry through the spec's policy, open loop.

    Parameters
    ----------
    samples : pl.DataFrame
        ``instance_samples`` of one service (docs/telemetry-schema.md), prefill and decode
        instances on the spec's pools.
    load : pl.DataFrame or None
        ``service_load`` of the service: the offered load a window carries (None or rows
        missing: windows without it; HeteroScale does not read it).
    spec : PolicySpec
        The published policy; its controller, SLO and control interval are used as they are.
    lag_s : float
        Age of the newest metrics at a decision (the backtest's default).
    startup_s : float
        Startup delay of a new instance: the spec does not record it, so the default is the
        one the backtest validated the policy under (``simulator.cluster.DEFAULT_STARTUP_S``).

    Returns
    -------
    pl.DataFrame
        :data:`ADVICE_SCHEMA`, one row per recorded interval: what ran, the advice taken at the
        interval's end from it (per role, instances ready plus starting), GPUs of each, the
        slowest pools' latencies, whether they breached the SLO, and whether that breach
        episode was warned of.
    AdviceSummary

    Raises
    ------
    ValueError
        No samples, several services or intervals, timestamps off one grid, or pools other
        than the spec's (a policy is replayed only on the hardware it was curated for).
    """
    if samples.is_empty():
        raise ValueError("no instance samples to replay")
    services = sorted(samples["service"].unique())
    if len(services) != 1:
        raise ValueError(f"replay one service at a time, the samples hold {services}")
    intervals = sorted(samples["interval_s"].unique())
    if len(intervals) != 1:
        raise ValueError(f"the samples of {services[0]} mix intervals of {intervals} s")
    interval_s = intervals[0]
    keys = _pool_keys(samples, spec)
    per_control = _per_control(spec.control_interval_s, interval_s)
    start, recorded = _recorded(samples, keys, interval_s)
    missing = frozenset(t for t, pools in enumerate(recorded) if pools is None)
    history = [pools or (_ABSENT,) * len(keys) for pools in recorded]
    offered = _offered(load, start, interval_s, len(history))
    lag = round(lag_s / interval_s)
    controller = HeteroScale(policy_inputs(spec), spec.controller)
    rows = []
    targets: Mapping[PoolKey, int] = {}  # the last decision's, standing until the next
    reason = "no decision yet"
    for t, pools in enumerate(history):
        if t in missing:
            continue
        ran = {key: pool.ready + pool.starting for key, pool in zip(keys, pools, strict=True)}
        if (t + 1) % per_control == 0:
            window = observe_window(
                history, keys, offered, t, per_control, lag, missing, per_control * interval_s
            )
            decision = controller.observe(window)
            targets, reason = decision.targets, decision.reason
        wanted = {key: targets.get(key, ran[key]) for key in keys}
        rows.append({"t": t, **_row(pools, keys, ran, wanted, spec), "reason": reason})
    lead = max(1, ceil_count(startup_s / interval_s))
    frame = _with_early_warnings(pl.DataFrame(rows), lead)
    per_role = tuple(_role_advice(frame, role, interval_s) for role in ROLES)
    actual = sum(r.gpu_hours_actual for r in per_role)
    wanted_hours = sum(r.gpu_hours_advised for r in per_role)
    summary = AdviceSummary(
        service=services[0],
        intervals=frame.height,
        missing_intervals=len(missing),
        interval_s=interval_s,
        control_interval_s=per_control * interval_s,
        lag_s=lag * interval_s,
        startup_s=startup_s,
        lead_intervals=lead,
        gate_passed=spec.validation.passed,
        gate=spec.validation.summary(),
        gpu_hours_actual=actual,
        gpu_hours_advised=wanted_hours,
        gpu_hours_difference=wanted_hours - actual,
        breach_intervals=int(frame["breach"].sum()),
        breaches=int(frame["episode_start"].sum()),
        early_warnings=int(frame["early_warning"].sum()),
        per_role=per_role,
    )
    per_interval = frame.with_columns(
        ts=pl.lit(start) + pl.duration(microseconds=pl.col("t") * round(interval_s * 1e6)),
        gpus_actual=pl.sum_horizontal(f"{r}_gpus_actual" for r in ROLES),
        gpus_advised=pl.sum_horizontal(f"{r}_gpus_advised" for r in ROLES),
    ).select(ADVICE_SCHEMA.keys())
    return per_interval.cast(ADVICE_SCHEMA), summary


def _row(
    pools: tuple[RecordedPool, ...],
    keys: list[PoolKey],
    ran: Mapping[PoolKey, int],
    wanted: Mapping[PoolKey, int],
    spec: PolicySpec,
) -> dict:
    """One interval's counts and GPUs per role, as run and as advised, and its SLO breach."""
    row = {}
    for role in ROLES:
        mine = [j for j, key in enumerate(keys) if key[0] == role]
        row[f"{role}_ready"] = sum(pools[j].ready for j in mine)
        row[f"{role}_starting"] = sum(pools[j].starting for j in mine)
        row[f"{role}_advised"] = sum(wanted[keys[j]] for j in mine)
        for which, counts in (("actual", ran), ("advised", wanted)):
            row[f"{role}_gpus_{which}"] = sum(counts[keys[j]] * keys[j][2] for j in mine)
    ttft = _slowest(pools, keys, PREFILL, "ttft_p99_s")
    tbt = _slowest(pools, keys, DECODE, "tbt_p99_s")
    return {
        **row,
        "ttft_p99_s": ttft,
        "tbt_p99_s": tbt,
        "breach": (ttft or 0.0) > spec.slo.ttft_p99_s or (tbt or 0.0) > spec.slo.tbt_p99_s,
    }


def _pool_keys(samples: pl.DataFrame, spec: PolicySpec) -> list[PoolKey]:
    """The spec's pools, prefill first, after checking the telemetry runs exactly those."""
    expected = [(p.role, p.gpu_type, p.gpus_per_instance) for p in spec.pools]
    recorded = sorted(samples.select("role", "gpu_type", "gpus_per_instance").unique().iter_rows())
    if set(recorded) != set(expected):
        shown = ", ".join(f"{r} {g} x{n}" for r, g, n in recorded)
        wanted = ", ".join(f"{r} {g} x{n}" for r, g, n in expected)
        raise ValueError(
            f"the telemetry runs {shown}; the policy was curated for {wanted}: it is replayed "
            "only on the hardware it was curated for"
        )
    return expected


def _per_control(control_interval_s: float, interval_s: float) -> int:
    """Telemetry intervals per decision: the spec's control interval, or every interval when
    the telemetry is coarser (a decision cannot see more often than samples arrive)."""
    ratio = control_interval_s / interval_s
    if ratio <= 1:
        return 1
    if not math.isclose(ratio, round(ratio)):
        raise ValueError(
            f"the policy decides every {control_interval_s:g} s, not a whole number of the "
            f"telemetry's {interval_s:g} s intervals"
        )
    return round(ratio)


def _recorded(
    samples: pl.DataFrame, keys: list[PoolKey], interval_s: float
) -> tuple[datetime, list[tuple[RecordedPool, ...] | None]]:
    """Each interval of the span from the first sample to the last: its pools in ``keys``
    order, None where no instance reported at all."""
    start = samples["ts"].min()
    step_us = round(interval_s * 1e6)
    offset = (pl.col("ts") - start).dt.total_microseconds()
    off_grid = samples.filter(offset % step_us != 0)
    if off_grid.height:
        raise ValueError(
            f"sample at {off_grid['ts'][0]} is not a whole number of {interval_s:g} s "
            f"intervals after the first, {start}"
        )
    metrics = list(INSTANCE_METRIC_COLUMNS)
    pooled = (
        samples.with_columns(t=offset // step_us)
        .group_by("t", "role", "gpu_type", "gpus_per_instance")
        .agg(
            pl.col("ready").sum().alias("ready_count"),
            (~pl.col("ready")).sum().alias("starting_count"),
            *(pl.col(m).filter(pl.col("ready")).mean().fill_null(math.nan) for m in metrics),
        )
    )
    count = int(pooled["t"].max()) + 1
    recorded: list[list[RecordedPool] | None] = [None] * count
    index = {key: j for j, key in enumerate(keys)}
    for row in pooled.iter_rows(named=True):
        t = row["t"]
        if recorded[t] is None:
            recorded[t] = [_ABSENT] * len(keys)
        recorded[t][index[(row["role"], row["gpu_type"], row["gpus_per_instance"])]] = RecordedPool(
            row["ready_count"], row["starting_count"], {m: row[m] for m in metrics}
        )
    return start, [None if pools is None else tuple(pools) for pools in recorded]


def _offered(
    load: pl.DataFrame | None, start: datetime, interval_s: float, count: int
) -> OfferedLoad:
    """The recorded offered load on the samples' grid; intervals without a row are missing."""
    counts = {"requests": [0.0] * count, "prompt": [0.0] * count, "output": [0.0] * count}
    present = set()
    step_us = round(interval_s * 1e6)
    if load is not None and load.height:
        offset = (pl.col("ts") - start).dt.total_microseconds()
        on_grid = load.filter(
            (offset % step_us == 0) & (offset >= 0) & (offset < count * step_us)
        ).with_columns(t=offset // step_us)
        for t, rps, input_tps, output_tps in on_grid.select(
            "t", "request_rate_rps", "input_tps", "output_tps"
        ).iter_rows():
            counts["requests"][t] = rps * interval_s
            counts["prompt"][t] = input_tps * interval_s
            counts["output"][t] = output_tps * interval_s
            present.add(t)
    return OfferedLoad(
        start,
        interval_s,
        counts["requests"],
        counts["prompt"],
        counts["output"],
        missing=frozenset(range(count)) - present,
    )


def _slowest(
    pools: tuple[RecordedPool, ...], keys: list[PoolKey], role: str, metric: str
) -> float | None:
    """The largest per-instance mean of a latency quantile over the role's pools with ready
    instances (the slowest pool decides the SLO, as the backtest scores it); None when none
    reported one."""
    values = [
        pool.metrics[metric]
        for key, pool in zip(keys, pools, strict=True)
        if key[0] == role and pool.ready and not math.isnan(pool.metrics[metric])
    ]
    return max(values, default=None)


def _with_early_warnings(frame: pl.DataFrame, lead: int) -> pl.DataFrame:
    """Mark where each breach episode starts (a breach with none in the ``lead`` intervals
    before it) and whether in those intervals the policy had advised more instances than ran.

    Episodes, not intervals: during and just after a breach the policy sees the breach itself
    (a lag later) and its latency feedback advises more, a reaction rather than a warning.
    The lead before an episode holds no breach, so advice in it answers the load signal or
    latency nearing the SLO (at most a lag's worth of an earlier breach can still show).
    """
    ts = frame["t"].to_list()
    ran = sum(frame[f"{role}_ready"] + frame[f"{role}_starting"] for role in ROLES)
    more = sum(frame[f"{role}_advised"] for role in ROLES) > ran
    ahead = dict(zip(ts, more.to_list(), strict=True))
    breach = dict(zip(ts, frame["breach"].to_list(), strict=True))
    starts, warned = [], []
    for t in ts:
        before = range(t - lead, t)
        first = breach[t] and not any(breach.get(s, False) for s in before)
        starts.append(first)
        warned.append(first and any(ahead.get(s, False) for s in before))
    return frame.with_columns(
        episode_start=pl.Series(starts, dtype=pl.Boolean),
        early_warning=pl.Series(warned, dtype=pl.Boolean),
    )


def _role_advice(frame: pl.DataFrame, role: str, interval_s: float) -> RoleAdvice:
    hours = interval_s / 3600
    actual = float(frame[f"{role}_gpus_actual"].sum()) * hours
    advised = float(frame[f"{role}_gpus_advised"].sum()) * hours
    ran = frame[f"{role}_ready"] + frame[f"{role}_starting"]
    return RoleAdvice(
        role=role,
        gpu_hours_actual=actual,
        gpu_hours_advised=advised,
        gpu_hours_difference=advised - actual,
        intervals_advised_more=int((frame[f"{role}_advised"] > ran).sum()),
        intervals_advised_fewer=int((frame[f"{role}_advised"] < ran).sum()),
    )
