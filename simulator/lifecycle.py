"""Where each instance is in its life, and what telemetry's ``ready`` flag makes of it.

An instance is ``starting`` (launched, loading weights: no traffic), ``ready`` (the router may
send it work), ``draining`` (scaled in: no new work, it finishes what it holds), ``warm``
(drained but kept running for a window, so that a later scale-out restores it at once instead of
paying the startup delay) or ``gone``. The cluster a run starts with is ready at time 0.

Each instance keeps its timeline of (time, state) changes; telemetry reads it back per interval
(:meth:`Lifecycle.presence`): an instance reports in every interval it existed during, and is
``ready`` only in intervals it was ready throughout, so that a half-started or half-drained
instance never dilutes per-ready-instance averages.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.metrics import Bins, Presence

STARTING = "starting"
READY = "ready"
DRAINING = "draining"
WARM = "warm"
GONE = "gone"


class Lifecycle:
    """Lifecycle states of every instance of a run, indexed by global instance index."""

    def __init__(self) -> None:
        self.timeline: list[list[tuple[float, str]]] = []
        self.draining: dict[int, float] = {}  # index -> seconds to keep warm once drained
        self._warm: dict[object, list] = {}  # pool key -> warm instances, oldest first
        self._warm_until: dict[int, float] = {}

    def state(self, index: int) -> str:
        """The instance's current state."""
        return self.timeline[index][-1][1]

    def start(self, instance, at_s: float) -> None:
        """A new instance (the next global index) was launched at ``at_s``."""
        if instance.index != len(self.timeline):
            raise ValueError(f"instance {instance.index} started out of order")
        self.timeline.append([(at_s, STARTING)])

    def set(self, instance, at_s: float, state: str) -> None:
        """Record that ``instance`` entered ``state`` at ``at_s``."""
        self.timeline[instance.index].append((at_s, state))

    def drain(self, instance, at_s: float, keep_warm_s: float) -> None:
        """Stop routing to ``instance``; once idle it goes warm for ``keep_warm_s`` (or away)."""
        self.set(instance, at_s, DRAINING)
        self.draining[instance.index] = keep_warm_s

    def retire_if_idle(
        self,
        instance,
        now: float,
        key: object,
        schedule: Callable[[float, Callable, object], None],
    ) -> None:
        """A draining instance that holds no work leaves, or joins the warm pool of ``key``
        until ``now + keep_warm_s`` (``schedule`` books that expiry)."""
        if instance.index not in self.draining or not instance.idle:
            return
        keep_warm_s = self.draining.pop(instance.index)
        if keep_warm_s <= 0:
            self.set(instance, now, GONE)
            return
        self.set(instance, now, WARM)
        self._warm.setdefault(key, []).append(instance)
        until_s = now + keep_warm_s
        self._warm_until[instance.index] = until_s
        schedule(until_s, self._expire, (instance, key, until_s))

    def take_back(self, key: object, candidates: list, now: float):
        """Restore an instance of ``key`` as ready, cheapest first: one of ``candidates`` still
        draining (it never stopped running), else the most recently drained warm one; None
        if neither exists."""
        for instance in candidates:
            if instance.index in self.draining:
                del self.draining[instance.index]
                self.set(instance, now, READY)
                return instance
        pool = self._warm.get(key)
        if not pool:
            return None
        instance = pool.pop()
        del self._warm_until[instance.index]
        self.set(instance, now, READY)
        return instance

    def _expire(self, arg: tuple) -> None:
        instance, key, until_s = arg
        if self._warm_until.get(instance.index) == until_s:
            del self._warm_until[instance.index]
            self._warm[key].remove(instance)
            self.set(instance, until_s, GONE)

    def presence(self, bins: Bins) -> Presence:
        """Which instances existed in, and were ready throughout, each interval of ``bins``."""
        n = len(self.timeline)
        exists = np.zeros((n, bins.count), dtype=bool)
        ready = np.zeros((n, bins.count), dtype=bool)
        interval = bins.interval_s
        lo = (np.arange(bins.count) + bins.first) * interval
        hi = lo + interval
        for index, changes in enumerate(self.timeline):
            born = changes[0][0]
            gone = next((at for at, state in changes if state == GONE), np.inf)
            exists[index] = (born < hi) & (gone > lo)
            following = [at for at, _ in changes[1:]] + [np.inf]
            for (at_s, state), until_s in zip(changes, following, strict=True):
                if state == READY:
                    ready[index] |= (at_s <= lo) & (hi <= until_s)
        return Presence(exists=exists, ready=ready)
