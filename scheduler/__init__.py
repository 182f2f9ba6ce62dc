"""Topology-aware placement of P/D instances: the paper's federated pre-scheduling layer (§5.4).

It turns "how many" into "where": given the cluster's topology tree, the running Deployment
Groups and one cycle's scale requests, :func:`place_cycle` returns the new groups and where each
instance went, spending common RDMA subgroups before scarce ones. It knows nothing of
policies: callers pass plain :class:`ScaleRequest` deltas (or targets, via
:func:`replay_targets`). Model, algorithm and open decisions: docs/scheduler.md.
"""

from scheduler.frames import OUTCOME_SCHEMA, PLAN_SCHEMA, outcomes_to_frame, plan_to_frame
from scheduler.placement import (
    SCALE_IN,
    SCALE_OUT,
    AllocationRecord,
    CycleResult,
    RequestOutcome,
    ScaleRequest,
    place_cycle,
)
from scheduler.replay import (
    DECISION_COLUMNS,
    INSTANCES_SCHEMA,
    TARGET_COLUMNS,
    ReplayResult,
    instance_hours,
    replay_targets,
    targets_from_decisions,
)
from scheduler.requirements import AFFINITIES, ROLES, RoleRequirements, ServiceRequirements
from scheduler.state import DeploymentGroup, Member, PlacementState
from scheduler.subgroups import (
    Priority,
    RdmaSubgroup,
    RdmaSubgroups,
    SubgroupKind,
    classify_subgroups,
)
from scheduler.topology import (
    LogicalCluster,
    Node,
    NodeLocation,
    PhysicalCluster,
    S1MiniPod,
    S2BigPod,
    Topology,
    TopologyError,
    Vdc,
)
from scheduler.topology_generator import generate_topology
from scheduler.topology_loader import (
    DEFAULT_TOPOLOGY_PATH,
    FLEET_TOPOLOGY_PATH,
    SMALL_TOPOLOGY_PATH,
    load_topology,
    parse_topology,
)

__all__ = [
    "AFFINITIES",
    "DECISION_COLUMNS",
    "DEFAULT_TOPOLOGY_PATH",
    "FLEET_TOPOLOGY_PATH",
    "INSTANCES_SCHEMA",
    "OUTCOME_SCHEMA",
    "PLAN_SCHEMA",
    "ROLES",
    "SCALE_IN",
    "SCALE_OUT",
    "SMALL_TOPOLOGY_PATH",
    "TARGET_COLUMNS",
    "AllocationRecord",
    "CycleResult",
    "DeploymentGroup",
    "LogicalCluster",
    "Member",
    "Node",
    "NodeLocation",
    "PhysicalCluster",
    "PlacementState",
    "Priority",
    "RdmaSubgroup",
    "RdmaSubgroups",
    "ReplayResult",
    "RequestOutcome",
    "RoleRequirements",
    "S1MiniPod",
    "S2BigPod",
    "ScaleRequest",
    "ServiceRequirements",
    "SubgroupKind",
    "Topology",
    "TopologyError",
    "Vdc",
    "classify_subgroups",
    "generate_topology",
    "load_topology",
    "outcomes_to_frame",
    "parse_topology",
    "place_cycle",
    "plan_to_frame",
    "replay_targets",
    "instance_hours",
    "targets_from_decisions",
]
