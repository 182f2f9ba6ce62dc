"""What a controller's run cost and delivered: the figures policies are compared by.

The paper's claim is more GPU utilisation at unchanged SLOs, so a run is scored by the
GPU-hours it held (starting, draining and warm instances included: they are paid for), how
busy those GPUs were, and how often each latency quantile stayed within its SLO, plus the
behaviour operators complain about in peers: how often it acted, how often it reversed itself
(flaps), how far the pools drifted from their ratio, and how long breaches lasted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.controller import DECODE, PREFILL
from policies.loop import ControlRun
from policies.slo import ServiceSLO
from simulator.fluid_loop import LoopTelemetry

#: A day in seconds: the unit runs are scored by, curated on, and resampled by.
DAY_S = 86_400.0
#: A scale-out and a scale-in of the same pool this close together count as one flap.
FLAP_WINDOW_S = 300.0


@dataclass(frozen=True)
class IntervalOutcome:
    """Per-interval arrays of a run, from which every score is an aggregate."""

    gpu_s: np.ndarray  # GPU-seconds paid
    busy_gpu_s: np.ndarray  # GPU-seconds busy (DCGM utilisation x ready GPUs)
    sm_gpu_s: np.ndarray  # GPU-seconds of SM activity
    ttft_ok: np.ndarray
    tbt_ok: np.ndarray
    requests: np.ndarray
    ready_prefill: np.ndarray
    ready_decode: np.ndarray


def interval_outcome(telemetry: LoopTelemetry, slo: ServiceSLO) -> IntervalOutcome:
    """Cost, busy time and SLO compliance per interval of a run."""
    n = telemetry.intervals
    dt = telemetry.load.interval_s
    tp = np.array([p.tp for p in telemetry.pools], dtype=float)[:, None]
    provisioned = telemetry.provisioned[:, :n]
    ready = telemetry.ready[:, :n]
    util = np.nan_to_num(telemetry.metric("gpu_util_ratio"))
    sm = np.nan_to_num(telemetry.metric("sm_active_ratio"))
    roles = np.array([p.role for p in telemetry.pools])
    requests = telemetry.load.requests[:n]
    return IntervalOutcome(
        gpu_s=(provisioned * tp).sum(axis=0) * dt,
        busy_gpu_s=(ready * tp * util).sum(axis=0) * dt,
        sm_gpu_s=(ready * tp * sm).sum(axis=0) * dt,
        ttft_ok=_within(telemetry, roles == PREFILL, "ttft_p99_s", slo.ttft_p99_s, requests),
        tbt_ok=_within(telemetry, roles == DECODE, "tbt_p99_s", slo.tbt_p99_s, requests),
        requests=requests,
        ready_prefill=ready[roles == PREFILL].sum(axis=0),
        ready_decode=ready[roles == DECODE].sum(axis=0),
    )


def _within(telemetry, rows, metric, limit, requests) -> np.ndarray:
    """The slowest pool of the role (with ready instances) within ``limit``; an interval with
    arrivals and no ready instance of the role misses."""
    values = telemetry.metric(metric)[rows]
    ready = telemetry.ready[rows, : telemetry.intervals] > 0
    worst = np.where(ready, np.nan_to_num(values, nan=0.0), -np.inf).max(axis=0)
    return np.where(np.isneginf(worst), requests <= 0, worst <= limit)


def score(
    run: ControlRun, slo: ServiceSLO, *, pd_ratio: float, part: slice = slice(None)
) -> dict[str, float]:
    """The scores of one run, over the intervals in ``part`` (default: all).

    Parameters
    ----------
    run : ControlRun
    slo : ServiceSLO
    pd_ratio : float
        The curated prefill:decode ratio the ready pools are compared with (drift).
    part : slice
        Intervals to score, e.g. one day.

    Returns
    -------
    dict
        ``gpu_hours``; ``avg_gpu_util`` and ``avg_sm_active`` (GPU-time-weighted over every
        paid GPU, 0-1); ``ttft_attainment``, ``tbt_attainment`` (share of intervals within
        SLO) and ``slo_attainment`` (the lower); the same weighted by arriving requests
        (``*_requests``); ``scaling_actions`` (decisions that changed a count) and ``flaps``
        (a pool reversed within :data:`FLAP_WINDOW_S`); ``pd_ratio_drift`` (mean relative
        deviation of ready P:D from ``pd_ratio``); ``breaches`` and ``recovery_s`` (episodes
        of consecutive intervals missing either SLO and their mean length).
    """
    return _scores(run, interval_outcome(run.telemetry, slo), pd_ratio, part)


def daily_scores(run: ControlRun, slo: ServiceSLO, *, pd_ratio: float) -> list[dict[str, float]]:
    """:func:`score` of each day of the run in turn (the last one possibly shorter), from one
    pass over its intervals."""
    out = interval_outcome(run.telemetry, slo)
    per_day = round(DAY_S / run.telemetry.load.interval_s)
    count = run.telemetry.intervals
    return [
        _scores(run, out, pd_ratio, slice(k, min(k + per_day, count)))
        for k in range(0, count, per_day)
    ]


def _scores(run: ControlRun, out: IntervalOutcome, pd_ratio: float, part: slice) -> dict:
    dt = run.telemetry.load.interval_s
    gpu_s = out.gpu_s[part]
    ok = (out.ttft_ok & out.tbt_ok)[part]
    requests = out.requests[part]
    weight = requests.sum()
    ttft_share = float(out.ttft_ok[part].mean())
    tbt_share = float(out.tbt_ok[part].mean())
    start = part.start or 0
    stop = part.stop if part.stop is not None else run.telemetry.intervals
    changes = run.decisions.filter(
        (run.decisions["t_s"] > start * dt) & (run.decisions["t_s"] <= stop * dt)
    )
    both = (out.ready_prefill[part] > 0) & (out.ready_decode[part] > 0)
    ratio = out.ready_prefill[part][both] / out.ready_decode[part][both]
    episodes = _episodes(~ok)
    return {
        "gpu_hours": float(gpu_s.sum()) / 3600,
        "avg_gpu_util": float(out.busy_gpu_s[part].sum() / gpu_s.sum()),
        "avg_sm_active": float(out.sm_gpu_s[part].sum() / gpu_s.sum()),
        "ttft_attainment": ttft_share,
        "tbt_attainment": tbt_share,
        "slo_attainment": min(ttft_share, tbt_share),
        "ttft_attainment_requests": float((out.ttft_ok[part] * requests).sum() / weight),
        "tbt_attainment_requests": float((out.tbt_ok[part] * requests).sum() / weight),
        "scaling_actions": int(changes["t_s"].n_unique()),
        "flaps": _flaps(changes),
        "pd_ratio_drift": float(np.mean(np.abs(ratio - pd_ratio)) / pd_ratio)
        if ratio.size
        else 0.0,
        "breaches": len(episodes),
        "recovery_s": float(np.mean(episodes) * dt) if episodes else 0.0,
    }


def _episodes(missed: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive True values."""
    lengths, current = [], 0
    for value in missed.tolist():
        if value:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    if current:
        lengths.append(current)
    return lengths


def _flaps(changes) -> int:
    """Reversals of a pool's direction within :data:`FLAP_WINDOW_S` of its previous move."""
    flaps = 0
    last: dict[tuple, tuple[float, int]] = {}
    for t_s, role, gpu, tp, before, after in changes.select(
        "t_s", "role", "gpu_type", "gpus_per_instance", "from_instances", "to_instances"
    ).iter_rows():
        key, sign = (role, gpu, tp), 1 if after > before else -1
        if key in last and last[key][1] != sign and t_s - last[key][0] <= FLAP_WINDOW_S:
            flaps += 1
        last[key] = (t_s, sign)
    return flaps
