"""Throughput scaling without coordination: each role sized on its own tokens/s.

What a team builds when it knows throughput is the right signal (the HeteroScale paper's
finding for decode) but treats prefill and decode as two services: prefill is sized on the
prompt tokens/s it serves, decode on the tokens/s it generates, each against its pool's
pressure-tested per-instance capacity, with nothing tying the two (no P/D ratio). It is given
the same headroom (utilisation target) as the curated coordinated policy, a hysteresis band
and a scale-in cool-down, so that the comparison isolates the coupling rather than the damping.
"""

from __future__ import annotations

import math

from policies.controller import DECODE, PREFILL, Decision, PoolKey, Window
from policies.inputs import PolicyInputs
from policies.sizing import clamp, size_role

#: The throughput each role is sized on.
METRICS = {PREFILL: "prefill_tps_total", DECODE: "decode_tps"}


class IndependentTps:
    """Each role's pools sized on the role's own TPS, independently of the other role.

    Parameters
    ----------
    inputs : PolicyInputs
        Pools with their pressure-tested ``tps_at_slo`` and bounds.
    scale_out_threshold, scale_in_threshold : float
        Hysteresis: a role acts only when its desired/current instances leave
        ``[1 - scale_in_threshold, 1 + scale_out_threshold]`` (0.1 each).
    scale_in_cooldown_s : float
        Least time since the role's last action before it scales in (300 s, the HPA's default
        scale-down stabilisation).
    utilisation_target : float
        Share of a pool's capacity it is sized to carry (1.0: none spare). A throughput signal
        cannot exceed what the pool serves, so without headroom a saturated pool reads as
        exactly full and is never grown.
    """

    name = "independent_tps"

    def __init__(
        self,
        inputs: PolicyInputs,
        *,
        scale_out_threshold: float = 0.1,
        scale_in_threshold: float = 0.1,
        scale_in_cooldown_s: float = 300.0,
        utilisation_target: float = 1.0,
    ) -> None:
        if scale_out_threshold < 0 or not 0 <= scale_in_threshold < 1 or scale_in_cooldown_s < 0:
            raise ValueError("need thresholds >= 0 (scale-in below 1) and a cool-down >= 0")
        if not 0 < utilisation_target <= 1:
            raise ValueError("utilisation_target must be in (0, 1]")
        self.headroom = 1 / utilisation_target
        self.inputs = inputs
        self.scale_out_threshold = scale_out_threshold
        self.scale_in_threshold = scale_in_threshold
        self.scale_in_cooldown_s = scale_in_cooldown_s
        self._last_action_s = {PREFILL: -math.inf, DECODE: -math.inf}

    def observe(self, window: Window) -> Decision:
        targets, notes = {}, []
        for role in (PREFILL, DECODE):
            counts, note = self._size(window, role)
            targets.update(counts)
            notes.append(note)
        return Decision(targets, "; ".join(notes))

    def _size(self, window: Window, role: str) -> tuple[dict[PoolKey, int], str]:
        """The role's pools: resized when its desired count leaves the band, else held."""
        pools = window.of_role(role)
        current = {p.key: p.instances for p in pools}
        held = {key: clamp(self.inputs, key, count) for key, count in current.items()}
        tps = window.total(METRICS[role], role)
        if tps is None or not any(p.ready for p in pools):
            return held, f"{role} TPS missing: hold"
        desired = size_role(self.inputs, role, tps, headroom=self.headroom)
        want, have = sum(desired.values()), sum(current.values())
        ratio = want / have if have else (math.inf if want else 1.0)
        note = f"{role} {tps:,.0f} tok/s wants {want}, runs {have} ({ratio:.2f})"
        if ratio > 1 + self.scale_out_threshold:
            self._last_action_s[role] = window.t_s
            return desired, note
        if ratio < 1 - self.scale_in_threshold:
            if window.t_s - self._last_action_s[role] < self.scale_in_cooldown_s:
                return held, f"{note}: scale-in cools down"
            self._last_action_s[role] = window.t_s
            return desired, note
        return held, f"{note}: within band"
