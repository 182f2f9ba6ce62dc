"""The working view of one cycle, and its virtual allocation: reserve, undo and redo.

Every instance a scale-out commits comes off the cycle's free-GPU index at once, so a later,
lower-priority service cannot take it (§5.4.5 step 5). Each is journalled per service as a
:class:`Step`, so a whole scale-out of this cycle can be undone exactly (its GPUs back to the
index, groups it created dropped) and redone step by step, groups and ids included: what the
second complete placement (:mod:`scheduler.scale_out`) and the repair (:mod:`scheduler.repair`)
are built on. Running instances and GPUs freed by scale-in are never touched this way.
"""

from __future__ import annotations

from collections import Counter

from scheduler.domains import node_domain
from scheduler.free_index import BucketKey, FreeIndex
from scheduler.records import SCALE_OUT, AllocationRecord
from scheduler.requirements import ServiceRequirements
from scheduler.state import PlacementState
from scheduler.subgroups import Priority, classify_subgroups
from scheduler.topology import Topology
from scheduler.weights import SHORTFALL_WEIGHT, gpu_cost
from scheduler.working_group import Step, WorkingGroup, decrement


class CycleView:
    """The working view of one cycle: the free-GPU index, the groups, the records so far."""

    def __init__(self, topology: Topology, state: PlacementState, cycle: int) -> None:
        self.topology = topology
        self.subgroups = classify_subgroups(topology)
        self.index = FreeIndex(topology, self.subgroups, state.used_gpus())
        self.groups = {group.id: WorkingGroup.of(group) for group in state.groups}
        self.by_service: dict[str, list[str]] = {}
        for group_id in sorted(self.groups):
            self.by_service.setdefault(self.groups[group_id].service, []).append(group_id)
        self.groups_created = state.groups_created
        self.cycle = cycle
        #: (action, group id, role, node id, GPUs per instance) -> instances, in decision order
        self.moves: Counter[tuple[str, str, str, str, int]] = Counter()
        self._orders: dict[tuple[tuple[str, ...], int, Priority], tuple[BucketKey, ...]] = {}
        #: service -> (requirements, instances wanted per role) of its scale-out, in order
        self.requests: dict[str, tuple[ServiceRequirements, dict[str, int]]] = {}
        #: service -> the instances its scale-out committed in this cycle, in order
        self.journal: dict[str, list[Step]] = {}

    def added(self, service: str) -> Counter[str]:
        """Instances per role the service's scale-out placed in this cycle."""
        return Counter(step.role for step in self.journal.get(service, ()))

    def _take(self, service: str, step: Step) -> None:
        """Reserve one instance's GPUs, add it to its group and journal it."""
        self.index.take(step.node_id, step.size)
        self.groups[step.group_id].members[(step.role, step.node_id, step.size)] += 1
        self.moves[(SCALE_OUT, step.group_id, step.role, step.node_id, step.size)] += 1
        self.journal.setdefault(service, []).append(step)

    def _cost(self, service: str) -> float:
        """Priority-, type- and shortfall-weighted GPUs of the service's scale-out so far
        (:mod:`scheduler.weights`), the price by which complete placements are compared."""
        needs, wanted = self.requests[service]
        cost = 0.0
        for step in self.journal.get(service, ()):
            preferred = needs.role(step.role).preferred_gpu_type
            fallback = self.topology.node(step.node_id).gpu_type != preferred
            cost += step.size * gpu_cost(self.subgroups.priority_of(step.node_id), fallback)
        added = self.added(service)
        for role, count in wanted.items():
            cost += SHORTFALL_WEIGHT * needs.role(role).gpus_per_instance * (count - added[role])
        return cost

    def _unplace(self, service: str) -> list[Step]:
        """Undo the service's scale-out of this cycle; return what it had committed.

        Its GPUs return to the index (:meth:`FreeIndex.give`), and a group it created in this
        cycle is dropped once empty. Instances that ran at the start of the cycle, and GPUs
        freed by scale-in, are untouched.
        """
        steps = self.journal.pop(service, [])
        for step in steps:
            self.index.give(step.node_id, step.size)
            group = self.groups[step.group_id]
            decrement(group.members, (step.role, step.node_id, step.size))
            decrement(self.moves, (SCALE_OUT, step.group_id, step.role, step.node_id, step.size))
            if not group.members:
                del self.groups[step.group_id]
                self.by_service[service].remove(step.group_id)
        return steps

    def _redo(self, service: str, steps: list[Step]) -> None:
        """Commit exactly the steps an :meth:`_unplace` returned, groups and ids included."""
        for step in steps:
            if step.group_id not in self.groups:
                self.groups[step.group_id] = WorkingGroup(
                    step.group_id, service, step.affinity, step.domain, Counter()
                )
                self.by_service.setdefault(service, []).append(step.group_id)
            self._take(service, step)

    # -- results -----------------------------------------------------------------------------

    def new_state(self) -> PlacementState:
        groups = tuple(g.frozen() for g in self.groups.values() if any(g.counts().values()))
        return PlacementState(groups, self.groups_created)

    def allocation_records(self) -> tuple[AllocationRecord, ...]:
        records = []
        for (action, group_id, role, node_id, size), instances in self.moves.items():
            group = self.groups[group_id]
            where = self.topology.location(node_id)
            records.append(
                AllocationRecord(
                    cycle=self.cycle,
                    service=group.service,
                    role=role,
                    action=action,
                    deployment_group=group_id,
                    node_id=node_id,
                    s2=where.s2,
                    s1=where.s1,
                    gpu_type=self.topology.node(node_id).gpu_type,
                    gpus=instances * size,
                    instances=instances,
                    subgroup_priority=self.subgroups.priority_of(node_id).label,
                    affinity_satisfied=node_domain(self.topology, group.affinity, node_id)
                    == group.domain,
                )
            )
        return tuple(records)
