"""The stock Kubernetes answer: one Horizontal Pod Autoscaler per pool, on GPU utilisation.

Each pool (a Deployment of prefill or of decode instances) gets its own ``autoscaling/v2``
HPA on the pool's average GPU utilisation (DCGM's GPU-utilisation gauge served to the HPA as a
Pods metric by a metrics adapter). Nothing couples the pools. The algorithm and its defaults
are those the Kubernetes documentation gives (Horizontal Pod Autoscaling: "Algorithm details"
and "Configurable scaling behavior"):

- the desired count is ``ceil(current replicas * current metric / target)``;
- nothing changes while that ratio is within a tolerance of 1.0 (0.1 by default);
- pods not yet ready count as using none of the metric when the ratio asks for a scale-up,
  so a burst is not launched twice; otherwise the ratio is taken over the ready pods;
- when the metrics cannot be fetched the HPA does not scale;
- default behaviour: scale-down is stabilised over 300 s (the highest recommendation of the
  window wins), scale-up is not; a 15 s period allows at most +100% or +4 pods, whichever is
  more, up, and up to 100% down;
- ``minReplicas``/``maxReplicas`` bound the result, and a count outside them is brought back
  at once.

Decode GPU utilisation stays near 1.0 at almost any load (a decode instance steps whenever a
request is resident: the HeteroScale paper's finding, which the simulator reproduces), so this
baseline keeps growing the decode pool; that is the behaviour it exists to show.

References
----------
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/ (algorithm,
tolerance, readiness, missing metrics, default behaviour); the defaults are those of
``pkg/apis/autoscaling/v2/defaults.go`` in kubernetes/kubernetes.
"""

from __future__ import annotations

import math
from collections import defaultdict

from policies.controller import Decision, PoolKey, PoolView, Window
from policies.inputs import PolicyInputs, PoolCapacity
from policies.sizing import ceil_count, clamp

METRIC = "gpu_util_ratio"


class HpaGpuUtil:
    """A Kubernetes HPA (autoscaling/v2, default behaviour) per pool on mean GPU utilisation.

    Parameters
    ----------
    inputs : PolicyInputs
        Only the pools' bounds are used: the HPA knows no capacities.
    target : float
        Target mean ``gpu_util_ratio``. 0.7 is ours (the paper gives none): a usual
        utilisation target (Kubernetes' own default, for CPU, is 0.8), whose 30% headroom
        absorbs the load growth over the minutes a new instance takes to start.
    tolerance : float
        No change while ``|observed / target - 1| <= tolerance`` (Kubernetes' default 0.1).
    scale_up_stabilization_s, scale_down_stabilization_s : float
        The lowest (up) / highest (down) recommendation over this many seconds wins
        (Kubernetes' defaults 0 and 300).
    period_s, scale_up_percent, scale_up_pods, scale_down_percent : float
        Rate policies: per ``period_s``, at most the larger of ``+scale_up_percent`` % and
        ``+scale_up_pods`` instances up, ``scale_down_percent`` % down (defaults 15 s, 100%,
        4, 100%).
    """

    name = "hpa_gpu_util"

    def __init__(
        self,
        inputs: PolicyInputs,
        *,
        target: float = 0.7,
        tolerance: float = 0.1,
        scale_up_stabilization_s: float = 0.0,
        scale_down_stabilization_s: float = 300.0,
        period_s: float = 15.0,
        scale_up_percent: float = 100.0,
        scale_up_pods: int = 4,
        scale_down_percent: float = 100.0,
    ) -> None:
        if not (target > 0 and tolerance >= 0 and period_s > 0):
            raise ValueError("need target > 0, tolerance >= 0 and period_s > 0")
        if min(scale_up_stabilization_s, scale_down_stabilization_s) < 0:
            raise ValueError("stabilisation windows must be >= 0")
        if scale_up_percent < 0 or scale_up_pods < 0 or not 0 <= scale_down_percent <= 100:
            raise ValueError("rate policies must be >= 0 (scale_down_percent at most 100)")
        self.inputs = inputs
        self.target = target
        self.tolerance = tolerance
        self.up_window_s = scale_up_stabilization_s
        self.down_window_s = scale_down_stabilization_s
        self.period_s = period_s
        self.up_percent = scale_up_percent
        self.up_pods = scale_up_pods
        self.down_percent = scale_down_percent
        self._recommendations: dict[PoolKey, list[tuple[float, int]]] = defaultdict(list)
        self._events: dict[PoolKey, list[tuple[float, int]]] = defaultdict(list)

    def observe(self, window: Window) -> Decision:
        targets, notes = {}, []
        for pool in window.pools:
            target, note = self._reconcile(pool, window.t_s)
            if target != pool.instances:
                self._events[pool.key].append((window.t_s, target - pool.instances))
            targets[pool.key] = target
            notes.append(f"{pool.role} {pool.key[1]} {note}")
        return Decision(targets, "; ".join(notes))

    def _reconcile(self, pool: PoolView, now: float) -> tuple[int, str]:
        """One HPA's reconcile: bounds first, then metrics, stabilisation and rate limits."""
        bounds = self.inputs.pool(pool.key)
        current = pool.instances
        target = clamp(self.inputs, pool.key, current)
        if target != current:
            return target, (
                f"{current} outside [{bounds.min_instances}, {bounds.max_instances}] -> {target}"
            )
        util = pool.value(METRIC)
        if util is None:
            return current, f"util missing: hold at {current}"
        desired = self._replicas(pool, util)
        stabilised = self._stabilise(pool.key, now, current, desired)
        target = self._limit_rate(pool.key, now, current, stabilised, bounds)
        note = f"util {util:.2f} / target {self.target:.2f}: {current} -> {target}"
        return target, note if target == desired else f"{note} (recommends {desired})"

    def _replicas(self, pool: PoolView, util: float) -> int:
        """The replica calculator: the count the ready instances' utilisation asks for."""
        ratio = util / self.target
        if pool.starting and ratio > 1:
            # Starting instances count as idle: the load they are about to take is not asked
            # for twice.
            if ratio * pool.ready / pool.instances <= 1 + self.tolerance:
                return pool.instances
        elif abs(ratio - 1) <= self.tolerance:
            return pool.instances
        return ceil_count(ratio * pool.ready)

    def _stabilise(self, key: PoolKey, now: float, current: int, desired: int) -> int:
        """``current`` moved toward ``desired`` no further than the lowest recommendation of
        the scale-up window (up) and the highest of the scale-down window (down) allow."""
        past = self._recommendations[key]
        past[:] = [(t, r) for t, r in past if t > now - max(self.up_window_s, self.down_window_s)]
        up = min([desired] + [r for t, r in past if t > now - self.up_window_s])
        down = max([desired] + [r for t, r in past if t > now - self.down_window_s])
        past.append((now, desired))
        return min(max(current, up), down)

    def _limit_rate(
        self, key: PoolKey, now: float, current: int, desired: int, bounds: PoolCapacity
    ) -> int:
        """``desired`` within the rate policies, counted from the count at the period's start,
        and within the pool's bounds."""
        events = self._events[key]
        events[:] = [(t, d) for t, d in events if t + self.period_s > now]
        start = current - sum(d for _, d in events)
        if desired > current:
            limit = max(ceil_count(start * (1 + self.up_percent / 100)), start + self.up_pods)
            return min(desired, max(limit, current), bounds.max_instances)
        if desired < current:
            limit = math.floor(start * (1 - self.down_percent / 100))
            return max(desired, min(limit, current), bounds.min_instances)
        return desired
