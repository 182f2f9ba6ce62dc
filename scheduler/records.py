"""What one scheduling cycle takes and gives: scale requests, allocation records, outcomes.

Plain frozen values, so the callers (replay, frames, costs) need nothing of the algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.requirements import ROLES
from scheduler.state import PlacementState

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"


@dataclass(frozen=True)
class ScaleRequest:
    """Change one role of one service by ``delta_instances`` (positive: out, negative: in)."""

    service: str
    role: str
    delta_instances: int

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not isinstance(self.delta_instances, int) or isinstance(self.delta_instances, bool):
            raise ValueError(f"delta_instances must be an integer, got {self.delta_instances!r}")


@dataclass(frozen=True)
class AllocationRecord:
    """Instances of one role of one group added to or removed from one node in one cycle.

    ``affinity_satisfied`` is checked, not assumed: the node lies in the group's domain.
    """

    cycle: int
    service: str
    role: str
    action: str
    deployment_group: str
    node_id: str
    s2: str
    s1: str
    gpu_type: str
    gpus: int
    instances: int
    subgroup_priority: str
    affinity_satisfied: bool


@dataclass(frozen=True)
class RequestOutcome:
    """How much of one scale request the cycle carried out."""

    cycle: int
    service: str
    role: str
    action: str
    requested_instances: int
    placed_instances: int

    @property
    def shortfall_instances(self) -> int:
        return self.requested_instances - self.placed_instances


@dataclass(frozen=True)
class CycleResult:
    """The state after the cycle, what moved where, and how much of each request was met."""

    state: PlacementState
    records: tuple[AllocationRecord, ...]
    outcomes: tuple[RequestOutcome, ...]
