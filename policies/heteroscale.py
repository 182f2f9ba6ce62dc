"""HeteroScale's coordinated policy (paper §5.3, §5.5) on the :class:`Controller` interface.

One signal, decode TPS, sizes both pools: the total instances a service needs is the decode
tokens/s it serves over the per-instance target (m-hat of Algorithm 1, pressure-tested), split
by the fixed P/D ratio so that prefill and decode always move together (§5.3.3, §5.4.4).
Around that proportional core sit the paper's stability and safety mechanisms:

- **hysteresis**: act only when desired/current total leaves ``[1 - scale_in_threshold,
  1 + scale_out_threshold]`` (§5.5);
- **cool-downs**, separate for scale-out and scale-in (§5.5);
- **damping**: a scale-in moves at most ``scale_in_step`` of the current total per action,
  a scale-out at most ``scale_out_step`` (§5.5; values ours);
- **tiered latency negative feedback** (§5.3.4): TTFT p99 of prefill or TBT p99 of decode
  above ``moderate`` x SLO adds ``moderate_step`` of the instances, above ``severe`` x SLO
  ``severe_step``; latency above ``scale_in_guard`` x SLO forbids scale-in. Feedback ignores the
  cool-down (it is the safety net) but waits while instances start and until the metrics
  can show them (a lag and a window later), so one breach is not answered twice;
- **soft scale-in** (§5.5): removed instances stay warm for ``soft_scale_in_s``; if latency
  reaches the moderate tier within that window they are restored at once;
- **hold on stale or missing metrics**: never scale in blind;
- **instances still starting count** as current, so a burst does not launch twice;
- **heterogeneous pools**: a role's instances are spread over its GPU types by their
  pressure-tested capacity (:func:`policies.sizing.size_role`), the ratio is per hardware
  pairing (the curated one of this service's pools).

The paper publishes none of the thresholds, cool-downs, tiers or step sizes (§5.5, "not
recovered"); the defaults below are ours, and curation sweeps them (docs/policy.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from policies.controller import DECODE, PREFILL, Decision, PoolKey, Window, hold
from policies.inputs import PolicyInputs
from policies.sizing import ceil_count, size_role


@dataclass(frozen=True)
class HeteroScaleConfig:
    """The coordinated controller's knobs (defaults ours; the paper's are not public).

    Attributes
    ----------
    utilisation_target : float
        Share of the pressure-tested per-instance target the pools are sized to carry
        (headroom for the load that arrives while new instances start).
    scale_out_threshold, scale_in_threshold : float
        Hysteresis band on desired/current total instances.
    scale_out_cooldown_s, scale_in_cooldown_s : float
        Least time since the last action before a proportional scale-out / scale-in.
    scale_out_step, scale_in_step : float
        Damping: most instances one action adds / removes, as a share of the current total
        (at least one).
    moderate, severe : float
        Latency tiers as multiples of the SLO; ``moderate_step``, ``severe_step`` the share of
        instances each adds.
    scale_in_guard : float
        No scale-in while a latency quantile is above this multiple of its SLO.
    soft_scale_in_s : float
        How long removed instances stay warm and watched (0: release at once).
    """

    utilisation_target: float = 0.8
    scale_out_threshold: float = 0.05
    scale_in_threshold: float = 0.1
    scale_out_cooldown_s: float = 30.0
    scale_in_cooldown_s: float = 300.0
    scale_out_step: float = 1.0
    scale_in_step: float = 0.1
    moderate: float = 0.9
    severe: float = 1.0
    moderate_step: float = 0.1
    severe_step: float = 0.2
    scale_in_guard: float = 0.8
    soft_scale_in_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 < self.utilisation_target <= 1:
            raise ValueError("utilisation_target must be in (0, 1]")
        if (
            min(self.scale_out_threshold, self.scale_in_threshold) < 0
            or self.scale_in_threshold >= 1
        ):
            raise ValueError("thresholds must be >= 0 and scale_in_threshold < 1")
        if min(self.scale_out_cooldown_s, self.scale_in_cooldown_s, self.soft_scale_in_s) < 0:
            raise ValueError("cool-downs and the soft scale-in window must be >= 0")
        if not (self.scale_out_step > 0 and 0 < self.scale_in_step <= 1):
            raise ValueError("steps must be > 0 (scale_in_step at most 1)")
        if not 0 < self.scale_in_guard <= self.moderate <= self.severe:
            raise ValueError("need 0 < scale_in_guard <= moderate <= severe")
        if not 0 < self.moderate_step <= self.severe_step:
            raise ValueError("need 0 < moderate_step <= severe_step")


class HeteroScale:
    """The coordinated decode-TPS controller with HeteroScale's safety mechanisms.

    Parameters
    ----------
    inputs : PolicyInputs
        Curated pools, ratio and per-instance target.
    config : HeteroScaleConfig
    latency_feedback, soft_scale_in : bool
        Switch a mechanism off (ablations).
    """

    name = "heteroscale"

    def __init__(
        self,
        inputs: PolicyInputs,
        config: HeteroScaleConfig = HeteroScaleConfig(),
        *,
        latency_feedback: bool = True,
        soft_scale_in: bool = True,
    ) -> None:
        self.inputs = inputs
        self.config = config
        self.latency_feedback = latency_feedback
        self.soft_scale_in = soft_scale_in
        self.per_instance = inputs.decode_tps_per_instance * config.utilisation_target
        self._reference = {role: inputs.of_role(role)[0].tps_at_slo for role in (PREFILL, DECODE)}
        most = {  # each role's bounded capacity, in reference instances
            role: sum(p.max_instances * p.tps_at_slo for p in inputs.of_role(role))
            / self._reference[role]
            for role in (PREFILL, DECODE)
        }
        r = inputs.pd_ratio
        self._max_total = max(
            2, math.floor(min(most[PREFILL] * (1 + r) / r, most[DECODE] * (1 + r)))
        )
        self._last_out_s = -float("inf")
        self._last_in_s = -float("inf")
        self._withdrawn: dict[PoolKey, int] | None = None  # counts before a soft scale-in
        self._settled_s = -float("inf")  # when metrics first reflect the last started instances

    def observe(self, window: Window) -> Decision:
        config = self.config
        if self._last_in_s == -float("inf"):
            self._last_in_s = window.t_s  # a controller just started has no history to shrink on
        if window.stale:
            return hold("hold: metrics missing or stale")
        decode_tps = window.total("decode_tps", DECODE)
        pressure = self._latency_pressure(window)
        current = {p.key: p.instances for p in window.pools}
        total = sum(current.values())
        if self._withdrawn is not None:
            if window.t_s - self._last_in_s > config.soft_scale_in_s:
                self._withdrawn = None  # the watch passed: the warm instances are released
            elif pressure >= config.moderate:
                restore, self._withdrawn = self._withdrawn, None
                self._last_out_s = window.t_s
                most = {pool.key: pool.max_instances for pool in self.inputs.pools}
                return Decision(
                    {k: min(max(v, current[k]), most[k]) for k, v in restore.items()},
                    f"soft scale-in undone: latency at {pressure:.2f} x SLO",
                )
        starting = sum(p.starting for p in window.pools)
        if starting:
            # Metrics show new instances' effect only a lag and a window after they serve.
            self._settled_s = window.t_s + window.lag_s + window.control_interval_s
        settled = not starting and window.t_s >= self._settled_s
        if self.latency_feedback and pressure >= config.moderate and settled:
            step = config.severe_step if pressure >= config.severe else config.moderate_step
            self._last_out_s = window.t_s
            return Decision(
                self._split(total + max(1, ceil_count(step * total))),
                f"latency {pressure:.2f} x SLO: +{step:.0%} of {total}",
            )
        desired = max(1, ceil_count(decode_tps / self.per_instance))
        ratio = desired / total if total else float("inf")
        reason = (
            f"decode {decode_tps:,.0f} tok/s at {self.per_instance:,.0f} per instance wants "
            f"{desired}, runs {total} ({ratio:.2f})"
        )
        if ratio > 1 + config.scale_out_threshold:
            if window.t_s - self._last_out_s < config.scale_out_cooldown_s or starting:
                return hold(reason + ": scale-out waits (cool-down or instances starting)")
            step = max(1, ceil_count(config.scale_out_step * total))
            self._last_out_s = window.t_s
            return Decision(self._split(min(desired, total + step)), "scale out: " + reason)
        if ratio < 1 - config.scale_in_threshold:
            since = window.t_s - max(self._last_in_s, self._last_out_s)
            if since < config.scale_in_cooldown_s or starting:
                return hold(reason + ": scale-in waits (cool-down or instances starting)")
            if self.latency_feedback and pressure > config.scale_in_guard:
                return hold(reason + f": no scale-in at latency {pressure:.2f} x SLO")
            step = max(1, ceil_count(config.scale_in_step * total))
            targets = self._split(max(desired, total - step))
            self._last_in_s = window.t_s
            keep = config.soft_scale_in_s if self.soft_scale_in else 0.0
            if keep:
                self._withdrawn = current
            return Decision(targets, "scale in: " + reason, keep_warm_s=keep)
        return hold("hold: " + reason)

    def _latency_pressure(self, window: Window) -> float:
        """The larger of TTFT p99 / SLO (prefill) and TBT p99 / SLO (decode)."""
        slo = self.inputs.slo
        ttft = window.worst("ttft_p99_s", PREFILL) or 0.0
        tbt = window.worst("tbt_p99_s", DECODE) or 0.0
        return max(ttft / slo.ttft_p99_s, tbt / slo.tbt_p99_s)

    def _split(self, total: int) -> dict[PoolKey, int]:
        """Both pools for ``total`` instances at the P/D ratio ``r``: prefill gets
        ``round(total r / (1 + r))`` reference instances and decode the rest (at least one
        each), so each pool is within one instance of its share; each role's instances then
        spread over its GPU types by capacity. The total stops where either role reaches its
        bounds, so a capped role does not leave the other growing out of ratio."""
        r = self.inputs.pd_ratio
        total = min(max(total, 2), self._max_total)
        prefill = min(max(1, round(total * r / (1 + r))), total - 1)
        decode = total - prefill
        return {
            **size_role(self.inputs, PREFILL, prefill * self._reference[PREFILL]),
            **size_role(self.inputs, DECODE, decode * self._reference[DECODE]),
        }
