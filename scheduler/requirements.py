"""What a service needs from the cluster: GPU types per role, affinity, P/D ratio, priority.

This is the scheduler's whole knowledge of a service (paper §5.4.1-§5.4.4). It holds no policy:
whoever decides *how many* instances a service gets builds these once and passes them with
every cycle's scale requests.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The roles a Deployment Group holds.
ROLES = ("prefill", "decode")

#: The switch level a Deployment Group must stay under; "none" relaxes it to the whole topology.
AFFINITIES = ("s1", "s2", "none")

#: Slack on float comparisons of the ratio error, so 0.28 * 25 counts as 7.
_RATIO_EPSILON = 1e-9


@dataclass(frozen=True)
class RoleRequirements:
    """GPU needs of one role.

    Parameters
    ----------
    preferred_gpu_type : str
        Tried first everywhere (§5.4.1).
    fallback_gpu_types : tuple of str, default ()
        Compatible types, in order of preference, used only where the preferred type cannot
        be placed.
    gpus_per_instance : int, default 1
        GPUs one instance takes, all on one node.
    """

    preferred_gpu_type: str
    fallback_gpu_types: tuple[str, ...] = ()
    gpus_per_instance: int = 1

    def __post_init__(self) -> None:
        if len(set(self.gpu_types)) != len(self.gpu_types):
            raise ValueError(f"GPU types repeat: {self.gpu_types}")
        if not all(isinstance(t, str) and t for t in self.gpu_types):
            raise ValueError(f"GPU types must be non-empty strings, got {self.gpu_types}")
        if not isinstance(self.gpus_per_instance, int) or self.gpus_per_instance < 1:
            raise ValueError(
                f"gpus_per_instance must be an integer >= 1, got {self.gpus_per_instance}"
            )

    @property
    def gpu_types(self) -> tuple[str, ...]:
        """Acceptable GPU types, most preferred first."""
        return (self.preferred_gpu_type, *self.fallback_gpu_types)


@dataclass(frozen=True)
class ServiceRequirements:
    """Placement needs of one service.

    Parameters
    ----------
    prefill, decode : RoleRequirements
        GPU needs per role; they may differ (heterogeneous P/D, e.g. prefill on L20 and
        decode on H20).
    affinity : {"s2", "s1", "none"}, default "s2"
        Every instance of a Deployment Group sits under one S2 switch, one S1 switch, or
        anywhere (§5.4.2).
    pd_ratio : float, default 1.0
        Prefill instances per decode instance that every Deployment Group keeps, the same
        quantity as the policy's ``pd_ratio`` (§5.4.4: a fixed ratio online).
    priority : int, default 0
        Larger is served first within a cycle.
    ratio_tolerance : float, default 1.0
        Largest ``|prefill - pd_ratio * decode|`` a Deployment Group may end a cycle with. The
        default admits the policy's split ``prefill = ceil(pd_ratio * decode)``; below 0.5
        some group sizes would have no valid split at all, so it is refused.

    Raises
    ------
    ValueError
        On an unknown affinity, a non-positive ratio, or a tolerance below 0.5.
    """

    prefill: RoleRequirements
    decode: RoleRequirements
    affinity: str = "s2"
    pd_ratio: float = 1.0
    priority: int = 0
    ratio_tolerance: float = 1.0

    def __post_init__(self) -> None:
        if self.affinity not in AFFINITIES:
            raise ValueError(f"affinity must be one of {AFFINITIES}, got {self.affinity!r}")
        if not self.pd_ratio > 0:
            raise ValueError(f"pd_ratio must be > 0, got {self.pd_ratio}")
        if not self.ratio_tolerance >= 0.5:
            raise ValueError(f"ratio_tolerance must be >= 0.5, got {self.ratio_tolerance}")

    def role(self, role: str) -> RoleRequirements:
        """The requirements of ``role`` ("prefill" or "decode")."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        return self.prefill if role == "prefill" else self.decode

    def ratio_error(self, prefill: int, decode: int) -> float:
        """Prefill instances above (positive) or below the ratio line for ``decode`` decoders."""
        return prefill - self.pd_ratio * decode

    def is_balanced(self, prefill: int, decode: int) -> bool:
        """Whether a Deployment Group of this size may exist at the end of a cycle.

        An empty group is balanced (it is dissolved). Otherwise both roles must be present,
        since a group without one of them cannot serve, and the ratio error must be within
        ``ratio_tolerance``.
        """
        if prefill == decode == 0:
            return True
        within = abs(self.ratio_error(prefill, decode)) <= self.ratio_tolerance + _RATIO_EPSILON
        return prefill >= 1 and decode >= 1 and within
