"""Latency negative feedback alone: each pool stepped on its own latency quantile.

The SLO-driven autoscaler with no throughput model: prefill reacts to its TTFT p99, decode to
its TBT p99, in tiers (above the SLO add 10%, above 1.2x the SLO add 20%, at least one
instance), and a pool whose latency stays below half its SLO for a whole cool-down gives back
5% (at least one). It is HeteroScale's tiered latency feedback (paper §5.3.4, which gives +10%
and +20% as examples; the tier values here are those of a public re-implementation) run as the
whole policy instead of as the safety net around a proportional rule: it only acts once the
SLO is already missed, and the instances it adds serve only after their startup delay.
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL, Decision, PoolKey, PoolView, Window
from policies.inputs import PolicyInputs
from policies.sizing import ceil_count, clamp


class LatencySteps:
    """Per pool: step out when the role's p99 latency breaks its SLO, in when far below it.

    Parameters
    ----------
    inputs : PolicyInputs
        The SLO and the pools' bounds.
    moderate, severe : float
        Latency tiers as multiples of the SLO (1.0 and 1.2): above ``moderate`` add
        ``moderate_step`` of the pool's instances, above ``severe`` ``severe_step``.
    moderate_step, severe_step : float
        Shares of the instances added (0.1 and 0.2), rounded up: at least one instance.
    scale_in_below : float
        Latency below this multiple of the SLO (0.5) for ``scale_in_cooldown_s`` removes
        ``scale_in_step`` of the instances (0.05), rounded up: at least one.
    scale_in_step, scale_in_cooldown_s : float
        See ``scale_in_below`` (cool-down 300 s).

    Notes
    -----
    Instances still starting count as current, and a pool with instances starting does not
    step out again (their latency relief has not arrived yet: no cascade). Missing metrics
    freeze the pool and restart its scale-in clock.
    """

    name = "latency_steps"

    def __init__(
        self,
        inputs: PolicyInputs,
        *,
        moderate: float = 1.0,
        severe: float = 1.2,
        moderate_step: float = 0.1,
        severe_step: float = 0.2,
        scale_in_below: float = 0.5,
        scale_in_step: float = 0.05,
        scale_in_cooldown_s: float = 300.0,
    ) -> None:
        if not 0 < scale_in_below < moderate <= severe:
            raise ValueError("need 0 < scale_in_below < moderate <= severe")
        if not (0 < moderate_step <= severe_step and 0 < scale_in_step < 1):
            raise ValueError("need 0 < moderate_step <= severe_step and 0 < scale_in_step < 1")
        if scale_in_cooldown_s < 0:
            raise ValueError("scale_in_cooldown_s must be >= 0")
        self.inputs = inputs
        self.moderate, self.severe = moderate, severe
        self.moderate_step, self.severe_step = moderate_step, severe_step
        self.scale_in_below = scale_in_below
        self.scale_in_step = scale_in_step
        self.scale_in_cooldown_s = scale_in_cooldown_s
        self.objectives = {
            PREFILL: ("ttft_p99_s", inputs.slo.ttft_p99_s),
            DECODE: ("tbt_p99_s", inputs.slo.tbt_p99_s),
        }
        self._low_s: dict[PoolKey, float] = {}  # how long each pool's latency has been low

    def observe(self, window: Window) -> Decision:
        targets, notes = {}, []
        for pool in window.pools:
            target, note = self._step(pool, window.control_interval_s)
            targets[pool.key] = clamp(self.inputs, pool.key, target)
            notes.append(f"{pool.role} {pool.key[1]} {note}")
        return Decision(targets, "; ".join(notes))

    def _step(self, pool: PoolView, elapsed_s: float) -> tuple[int, str]:
        """The pool's count after this window's latency, before its bounds."""
        metric, slo = self.objectives[pool.role]
        current = pool.instances
        latency = pool.value(metric)
        if latency is None:
            self._low_s[pool.key] = 0.0
            return current, f"{metric} missing: hold at {current}"
        pressure = latency / slo
        note = f"{metric} {latency:.3g} s = {pressure:.2f} x SLO"
        if pressure > self.moderate:
            self._low_s[pool.key] = 0.0
            if pool.starting:
                return current, f"{note}: waits for {pool.starting} starting"
            step = self.severe_step if pressure > self.severe else self.moderate_step
            target = current + max(1, ceil_count(step * current))
            return target, f"{note}: +{step:.0%} {current} -> {target}"
        if pressure >= self.scale_in_below:
            self._low_s[pool.key] = 0.0
            return current, f"{note}: hold"
        low_s = self._low_s.get(pool.key, 0.0) + elapsed_s
        if low_s < self.scale_in_cooldown_s:
            self._low_s[pool.key] = low_s
            return current, f"{note}: hold ({low_s:g} s below {self.scale_in_below:g} x SLO)"
        self._low_s[pool.key] = 0.0
        target = current - max(1, ceil_count(self.scale_in_step * current))
        return target, f"{note} for {low_s:g} s: -{self.scale_in_step:.0%} {current} -> {target}"
