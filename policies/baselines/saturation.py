"""llm-d's saturation autoscaler: one instance more when a pool runs out of KV cache or queue.

The Workload Variant Autoscaler (WVA) of llm-d, with its V1 saturation analyzer, scales a
model's deployments on live vLLM gauges instead of a capacity model. As its documentation
describes the analyzer, with the defaults of its saturation-scaling ConfigMap:

- a replica is saturated when its KV-cache usage reaches ``kvCacheThreshold`` (0.8) or its
  waiting queue ``queueLengthThreshold`` (5);
- spare capacity is averaged over the non-saturated replicas (``threshold - usage``, none when
  every replica is saturated); the deployment gets one replica more when the average spare KV
  falls below ``kvSpareTrigger`` (0.1) or the average spare queue below ``queueSpareTrigger``
  (3);
- scale-down removes one replica, and only when it is safe: with the load of the non-saturated
  replicas spread over one replica fewer, both spares stay at or above their triggers, and at
  least two replicas are non-saturated;
- a deployment with replicas still pending is in transition: it keeps its count, so a burst
  is not answered twice.

Here each pool is one deployment and its per-instance means stand for every replica (the
fluid plant's instances of a pool are alike; WVA reads each replica's peak over a minute). WVA
has no scale-in cool-down of its own: the HPA that applies its recommendation in llm-d's
deployment stabilises scale-down over 300 s by default, so a scale-down here must have been
safe for that whole window.

References
----------
https://github.com/llm-d/llm-d-workload-variant-autoscaler: ``docs/saturation-analyzer.md``
and ``deploy/configmap-saturation-scaling.yaml``.
"""

from __future__ import annotations

from policies.controller import Decision, PoolKey, PoolView, Window
from policies.inputs import PolicyInputs
from policies.sizing import clamp


class Saturation:
    """Per pool: +1 instance when spare KV cache or queue runs low, -1 when removing one is
    safe for a whole cool-down.

    Parameters
    ----------
    inputs : PolicyInputs
        Only the pools' bounds are used.
    kv_cache_threshold, queue_length_threshold : float
        An instance is saturated at ``kv_usage_ratio`` >= 0.8 or ``queue_depth`` >= 5.
    kv_spare_trigger, queue_spare_trigger : float
        Scale out when the spare KV share falls below 0.1 or the spare queue below 3.
    scale_in_cooldown_s : float
        How long a scale-in must have been safe before it happens (300 s).
    """

    name = "saturation"

    def __init__(
        self,
        inputs: PolicyInputs,
        *,
        kv_cache_threshold: float = 0.8,
        queue_length_threshold: float = 5.0,
        kv_spare_trigger: float = 0.1,
        queue_spare_trigger: float = 3.0,
        scale_in_cooldown_s: float = 300.0,
    ) -> None:
        if not 0 <= kv_spare_trigger <= kv_cache_threshold <= 1:
            raise ValueError("need 0 <= kv_spare_trigger <= kv_cache_threshold <= 1")
        if not 0 <= queue_spare_trigger <= queue_length_threshold:
            raise ValueError("need 0 <= queue_spare_trigger <= queue_length_threshold")
        if scale_in_cooldown_s < 0:
            raise ValueError("scale_in_cooldown_s must be >= 0")
        self.inputs = inputs
        self.kv_cache_threshold = kv_cache_threshold
        self.queue_length_threshold = queue_length_threshold
        self.kv_spare_trigger = kv_spare_trigger
        self.queue_spare_trigger = queue_spare_trigger
        self.scale_in_cooldown_s = scale_in_cooldown_s
        self._safe_s: dict[PoolKey, float] = {}  # how long scaling each pool in has been safe

    def observe(self, window: Window) -> Decision:
        targets, notes = {}, []
        for pool in window.pools:
            target, note = self._analyse(pool, window.control_interval_s)
            targets[pool.key] = clamp(self.inputs, pool.key, target)
            notes.append(f"{pool.role} {pool.key[1]} {note}")
        return Decision(targets, "; ".join(notes))

    def _analyse(self, pool: PoolView, elapsed_s: float) -> tuple[int, str]:
        """The pool's count after this window's saturation analysis, before its bounds."""
        current = pool.instances
        kv, queue = pool.value("kv_usage_ratio"), pool.value("queue_depth")
        if kv is None or queue is None:
            self._safe_s[pool.key] = 0.0
            return current, f"KV/queue metrics missing: hold at {current}"
        if pool.starting:  # in transition: WVA keeps the count it asked for
            self._safe_s[pool.key] = 0.0
            return current, f"{pool.starting} starting: hold at {current}"
        note = f"kv {kv:.2f}, queue {queue:.1f}"
        if self._spare_low(kv, queue):
            self._safe_s[pool.key] = 0.0
            return current + 1, f"{note}: spare low, {current} -> {current + 1}"
        if not self._scale_in_safe(kv, queue, pool.ready):
            self._safe_s[pool.key] = 0.0
            return current, f"{note}: hold"
        safe_s = self._safe_s.get(pool.key, 0.0) + elapsed_s
        if safe_s < self.scale_in_cooldown_s:
            self._safe_s[pool.key] = safe_s
            return current, f"{note}: hold (scale-in safe for {safe_s:g} s)"
        self._safe_s[pool.key] = 0.0
        return current - 1, f"{note}: scale-in safe for {safe_s:g} s, {current} -> {current - 1}"

    def _spare_low(self, kv: float, queue: float) -> bool:
        """Whether spare capacity is below a trigger (none is left when saturated)."""
        if kv >= self.kv_cache_threshold or queue >= self.queue_length_threshold:
            return True
        return (
            self.kv_cache_threshold - kv < self.kv_spare_trigger
            or self.queue_length_threshold - queue < self.queue_spare_trigger
        )

    def _scale_in_safe(self, kv: float, queue: float, ready: int) -> bool:
        """Whether ``ready`` instances' load on one fewer keeps both spares at their triggers."""
        if ready < 2:
            return False
        spread = ready / (ready - 1)
        return (
            self.kv_cache_threshold - kv * spread >= self.kv_spare_trigger
            and self.queue_length_threshold - queue * spread >= self.queue_spare_trigger
        )
