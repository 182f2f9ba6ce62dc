"""The coordinated proportional rule: decode TPS sizes both pools at a fixed P/D ratio.

One decision from one observation. Scaling either pool alone only moves the bottleneck, so a
single signal (total decode TPS) sets the decode pool and the P/D ratio sets the prefill pool
from it, and both pools move in the same decision (paper §5.3.3, §5.4.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from policies.config import CoordinatedPolicyConfig

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
HOLD = "hold"
ACTIONS = (SCALE_OUT, SCALE_IN, HOLD)

#: Products like 25 * 0.28 land at 7.000000000000001 in binary floating point; rounding to this
#: many decimals first keeps ceil from adding a whole instance for representation noise.
_CEIL_DECIMALS = 9


class PoolCounts(NamedTuple):
    """Instance counts of the two pools of one service."""

    prefill: int
    decode: int

    @property
    def total(self) -> int:
        """Instances of both roles together."""
        return self.prefill + self.decode


@dataclass(frozen=True)
class Decision:
    """One control step: the desired counts, whether the pools move to them, and why."""

    action: str
    target: PoolCounts
    reason: str


def _ceil(value: float) -> int:
    return math.ceil(round(value, _CEIL_DECIMALS))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _desired_over_current(desired: int, current: int) -> float:
    if current:
        return desired / current
    return math.inf if desired else 1.0


def pool_targets(decode_tps: float, config: CoordinatedPolicyConfig) -> PoolCounts:
    """Desired instance counts for an observed total decode throughput.

    Parameters
    ----------
    decode_tps : float
        Total decode tokens/s of the service's decode pool over the last control interval.
    config : CoordinatedPolicyConfig
        Per-instance target, P/D ratio and bounds.

    Returns
    -------
    PoolCounts
        ``N_D = clamp(ceil(decode_tps / target_decode_tps_per_instance), min_decode, max_decode)``
        and ``N_P = clamp(ceil(N_D * pd_ratio), min_prefill, max_prefill)``.

    Notes
    -----
    Our reconstruction: the paper states that a per-instance target turns the observed metric
    into a capacity and the fixed P/D ratio splits it, but its exact formulas (Appendix B) are
    not public. Decode TPS is carried by decode instances only, so it sizes the decode pool
    and the prefill pool follows through the ratio, computed from the already bounded decode
    count so the two pools stay in ratio wherever the bounds allow.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.3 (proportional control), §5.4.4 (fixed P/D ratio).
    """
    decode = _clamp(
        _ceil(decode_tps / config.target_decode_tps_per_instance),
        config.min_decode,
        config.max_decode,
    )
    prefill = _clamp(_ceil(decode * config.pd_ratio), config.min_prefill, config.max_prefill)
    return PoolCounts(prefill=prefill, decode=decode)


def decide(
    decode_tps: float,
    current: PoolCounts,
    config: CoordinatedPolicyConfig,
    *,
    since_last_action_s: float = math.inf,
) -> Decision:
    """Decide one control step: scale both pools to :func:`pool_targets`, or hold.

    Parameters
    ----------
    decode_tps : float
        Total decode tokens/s observed over the last control interval.
    current : PoolCounts
        The pools' counts now.
    config : CoordinatedPolicyConfig
        Target, ratio, bounds, the hysteresis band and the cool-downs.
    since_last_action_s : float, default inf
        Seconds since the pools last scaled (infinite when they never have).

    Returns
    -------
    Decision
        ``target`` is always the desired counts; ``action`` is ``scale_out`` when desired/current
        total instances exceeds ``1 + scale_out_threshold``, ``scale_in`` when it is below
        ``1 - scale_in_threshold``, else ``hold`` (the pools keep their current counts). A
        scale action inside its cool-down becomes ``hold``.

    Notes
    -----
    The band is applied to the total of both pools because both always move together; a ratio
    is infinite when no instance runs and some are wanted. Asymmetric thresholds give the
    paper's hysteresis, and the cool-downs its anti-flapping (§5.5); damping comes later.
    """
    target = pool_targets(decode_tps, config)
    change = _desired_over_current(target.total, current.total)
    band_low, band_high = 1 - config.scale_in_threshold, 1 + config.scale_out_threshold
    if change > band_high:
        action, verdict = SCALE_OUT, f"> {band_high:.2f}"
    elif change < band_low:
        action, verdict = SCALE_IN, f"< {band_low:.2f}"
    else:
        action, verdict = HOLD, f"within [{band_low:.2f}, {band_high:.2f}]"
    cooldown_s = {SCALE_OUT: config.scale_out_cooldown_s, SCALE_IN: config.scale_in_cooldown_s}
    if action != HOLD and since_last_action_s < cooldown_s[action]:
        verdict += f", but {action} cools down for {cooldown_s[action]:g} s"
        action = HOLD
    reason = (
        f"decode {decode_tps:.1f} tok/s at {config.target_decode_tps_per_instance:g} per instance"
        f" wants {target.decode}D/{target.prefill}P (P:D {config.pd_ratio:g});"
        f" desired/current {target.total}/{current.total} = {change:.2f} {verdict}"
    )
    return Decision(action=action, target=target, reason=reason)
