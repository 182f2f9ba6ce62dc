"""The one interface every autoscaling policy implements: ``observe(window) -> decision``.

A controller sees what a real one would: per pool, the instances it runs (ready and still
starting, from the orchestrator's live view) and the metrics its instances reported over the
last control window, delivered late by the scrape and rule-evaluation intervals
(:attr:`Window.lag_s`); the offered load as the router counts it; nothing about the future.
It answers with the instances it wants per pool. The same controller runs in the fast-mode
fleet backtest, the request-level backtest and against recorded telemetry (advisory mode,
:mod:`policies.advise`), because all of them build a :class:`Window` and apply a
:class:`Decision`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: A pool's identity: (role, GPU type, GPUs per instance).
PoolKey = tuple[str, str, int]

PREFILL = "prefill"
DECODE = "decode"


@dataclass(frozen=True)
class PoolView:
    """One pool as the controller sees it at decision time.

    Attributes
    ----------
    key : PoolKey
    ready, starting : int
        Instances serving, and launched but not serving yet (live counts, not lagged).
    metrics : Mapping[str, float] or None
        Per-instance mean of each canonical metric (``telemetry.schema`` names) over the
        observed window, over ready instances; None when the window's metrics are missing or
        stale (a scrape failed): a controller must not scale in on them.
    reporting : float or None
        Ready instances the metrics were averaged over (the observed window's mean count):
        a pool's total is a per-instance mean times this, not times the live count, which a
        scale-out completed since the window would inflate (and a scale-in deflate). None:
        the pool has not changed since, ``ready``.
    """

    key: PoolKey
    ready: int
    starting: int
    metrics: Mapping[str, float] | None
    reporting: float | None = None

    @property
    def role(self) -> str:
        return self.key[0]

    @property
    def reported(self) -> float:
        """Instances behind the pool's metrics (:attr:`reporting`, else ``ready``)."""
        return self.ready if self.reporting is None else self.reporting

    @property
    def instances(self) -> int:
        """Instances counted as running: ready plus starting (a burst must not cascade)."""
        return self.ready + self.starting

    def value(self, metric: str) -> float | None:
        """The pool's per-instance mean of ``metric``; None when no ready instance reported it
        (stale metrics, nothing ready, or a metric the role does not have)."""
        if self.ready == 0 or self.metrics is None:
            return None
        value = self.metrics[metric]
        return None if value is None or math.isnan(value) else value


@dataclass(frozen=True)
class Window:
    """Everything a controller observes at one decision.

    Attributes
    ----------
    now : datetime
        Wall-clock time of the decision (time-zone aware): schedules read the time of day.
    t_s : float
        Seconds since the run's start when the decision is taken.
    control_interval_s : float
        Time since the previous decision.
    lag_s : float
        Age of the end of the metrics' window (scrape plus rule evaluation).
    pools : tuple of PoolView
    load : Mapping[str, float] or None
        The service's offered load over the observed window as the router counts it
        (``request_rate_rps``, ``input_tps``, ``output_tps``); None when missing.
    """

    now: datetime
    t_s: float
    control_interval_s: float
    lag_s: float
    pools: tuple[PoolView, ...]
    load: Mapping[str, float] | None = None

    @property
    def stale(self) -> bool:
        """True when any pool with ready instances lacks its metrics."""
        return any(p.metrics is None and p.ready > 0 for p in self.pools)

    def of_role(self, role: str) -> tuple[PoolView, ...]:
        return tuple(p for p in self.pools if p.role == role)

    def instances(self, role: str) -> int:
        """Ready plus starting instances of ``role``."""
        return sum(p.instances for p in self.of_role(role))

    def total(self, metric: str, role: str) -> float | None:
        """Sum over the role's ready instances of a per-instance metric (e.g. pool TPS); None
        when stale."""
        pools = self.of_role(role)
        if any(p.metrics is None and p.ready > 0 for p in pools):
            return None
        return sum((p.value(metric) or 0.0) * p.reported for p in pools if p.ready > 0)

    def mean(self, metric: str, role: str) -> float | None:
        """Mean of a per-instance metric over the role's reporting instances; None when stale
        or nothing of the role is ready."""
        total = self.total(metric, role)
        reported = sum(p.reported for p in self.of_role(role) if p.ready > 0)
        return None if total is None or reported == 0 else total / reported

    def worst(self, metric: str, role: str) -> float | None:
        """Largest per-instance value over the role's pools with ready instances (a latency
        quantile: the slowest pool decides the SLO); None when stale or none is ready."""
        pools = [p for p in self.of_role(role) if p.ready > 0]
        if not pools or any(p.metrics is None for p in pools):
            return None
        return max(p.value(metric) or 0.0 for p in pools)


@dataclass(frozen=True)
class Decision:
    """What a controller wants after one observation.

    Attributes
    ----------
    targets : Mapping[PoolKey, int]
        Instances wanted per pool (ready plus starting); pools left out keep their count.
    reason : str
        The numbers behind it, in words, for the audit log.
    keep_warm_s : float
        For instances removed: how long to keep them warm (soft scale-in), 0 to release.
    """

    targets: Mapping[PoolKey, int] = field(default_factory=dict)
    reason: str = ""
    keep_warm_s: float = 0.0


class Controller(Protocol):
    """A policy: one ``observe`` per control interval, state kept inside."""

    name: str

    def observe(self, window: Window) -> Decision: ...


def hold(reason: str) -> Decision:
    """A decision that changes nothing."""
    return Decision({}, reason)
