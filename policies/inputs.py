"""What every policy is built from: the curated capacities, ratio and target, and history.

Curation (Algorithm 1, :mod:`policies.curation`) pressure-tests each pool to find the load one
instance carries at the SLO and the P/D ratio; the curation days' offered load is the history
that schedule- and forecast-based policies fit. Evaluation days never enter it.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.controller import DECODE, PREFILL, PoolKey
from policies.slo import ServiceSLO
from simulator.fluid_load import FluidLoad


@dataclass(frozen=True)
class PoolCapacity:
    """One pool's pressure-tested capacity and bounds.

    Attributes
    ----------
    key : PoolKey
    tps_at_slo : float
        Tokens/s one instance serves while its role's latency quantile stays within the SLO
        (prompt tokens for prefill, generated tokens for decode).
    min_instances, max_instances : int
        Bounds on the pool's instances.
    """

    key: PoolKey
    tps_at_slo: float
    min_instances: int = 1
    max_instances: int = 512

    def __post_init__(self) -> None:
        if not self.tps_at_slo > 0 or not 0 <= self.min_instances <= self.max_instances:
            raise ValueError(f"pool {self.key}: need tps_at_slo > 0 and 0 <= min <= max")

    @property
    def role(self) -> str:
        return self.key[0]


@dataclass(frozen=True)
class PolicyInputs:
    """Everything a policy may know before it runs.

    Attributes
    ----------
    pools : tuple of PoolCapacity
        One per pool the cluster runs, prefill first.
    slo : ServiceSLO
    pd_ratio : float
        Prefill instances per decode instance at the pressure-tested optimum.
    decode_tps_per_instance : float
        The coordinated target: decode tokens/s per instance of a P+D group in ratio at the
        SLO (m-hat of Algorithm 1).
    history : FluidLoad or None
        Offered load of the curation days (never the evaluation days). None where it is not
        known: a published spec does not carry it, so advisory mode (:mod:`policies.advise`)
        builds HeteroScale, which reads none, without it.
    control_interval_s : float
        Decision period.
    """

    pools: tuple[PoolCapacity, ...]
    slo: ServiceSLO
    pd_ratio: float
    decode_tps_per_instance: float
    history: FluidLoad | None
    control_interval_s: float = 15.0

    def of_role(self, role: str) -> tuple[PoolCapacity, ...]:
        if role not in (PREFILL, DECODE):
            raise ValueError(f"role must be prefill or decode, got {role!r}")
        return tuple(p for p in self.pools if p.role == role)

    def pool(self, key: PoolKey) -> PoolCapacity:
        for pool in self.pools:
            if pool.key == key:
                return pool
        raise KeyError(key)
