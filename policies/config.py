"""Configuration of the coordinated decode-TPS controller (paper §5.3.3, §5.5)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CoordinatedPolicyConfig:
    """What an operator sets for one service's coordinated proportional controller.

    Parameters
    ----------
    target_decode_tps_per_instance : float
        Decode tokens/s one decode instance should carry at the SLO; the paper obtains it by
        pressure test (Algorithm 1), :func:`policies.target_from_telemetry` estimates it from data.
    pd_ratio : float, default 1.0
        Prefill instances per decode instance (1.0 = equal counts, 0.5 = 1P:2D). The paper
        scales online with a fixed, empirically chosen ratio (§5.4.4).
    scale_out_threshold, scale_in_threshold : float, default 0.1
        Hysteresis band: the pools move only when desired/current total instances leaves
        ``[1 - scale_in_threshold, 1 + scale_out_threshold]`` (§5.5 anti-flapping).
    min_prefill, max_prefill, min_decode, max_decode : int
        Instance bounds per role. The paper's values are not public; these defaults are ours.
    control_interval_s : float, default 60.0
        How often the controller observes and decides; the paper's period is not public.
    scale_out_cooldown_s, scale_in_cooldown_s : float, default 0 and 300
        Least time since the last scale action before another scale-out or scale-in (§5.5
        cool-downs). The paper's values are not public. Ours: scale out at once, since an
        under-provisioned pool breaks latency SLOs, but wait 300 s before shrinking (the
        default scale-down stabilisation window of the Kubernetes HPA), since with few
        instances one instance is a large step and a proportional rule would otherwise flap.

    Raises
    ------
    ValueError
        On a non-positive target, ratio or interval, a threshold outside its range, or bounds
        with min > max or min < 0.
    """

    target_decode_tps_per_instance: float
    pd_ratio: float = 1.0
    scale_out_threshold: float = 0.1
    scale_in_threshold: float = 0.1
    min_prefill: int = 1
    max_prefill: int = 256
    min_decode: int = 1
    max_decode: int = 256
    control_interval_s: float = 60.0
    scale_out_cooldown_s: float = 0.0
    scale_in_cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("target_decode_tps_per_instance", "pd_ratio", "control_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("scale_out_cooldown_s", "scale_in_cooldown_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.scale_out_threshold >= 0:
            raise ValueError(f"scale_out_threshold must be >= 0, got {self.scale_out_threshold}")
        if not 0 <= self.scale_in_threshold < 1:
            raise ValueError(f"scale_in_threshold must be in [0, 1), got {self.scale_in_threshold}")
        for role in ("prefill", "decode"):
            low, high = getattr(self, f"min_{role}"), getattr(self, f"max_{role}")
            if not 0 <= low <= high:
                raise ValueError(f"{role} bounds need 0 <= min <= max, got [{low}, {high}]")
