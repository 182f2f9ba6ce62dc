"""A lower bound on what a service's scale-out can cost: the repair's trigger.

The repair (:mod:`scheduler.repair`) only tries to move services that cost more than they
could. "Could" ignores capacity and other services: the cheapest affinity domain for both
roles, each role on its cheapest accepted GPU class there (type and subgroup priority). A
heterogeneous P/D service with S1 affinity, say, can only run in a mixed S1, a high pool, so
its high-pool cost is no excess and it triggers no trial.
"""

from __future__ import annotations

from scheduler.free_index import FreeIndex
from scheduler.requirements import ServiceRequirements
from scheduler.subgroups import Priority
from scheduler.weights import SHORTFALL_WEIGHT, gpu_cost

#: A domain's offer: GPU type -> the lowest subgroup priority of its nodes of that type.
Offer = tuple[tuple[str, Priority], ...]


class LeastCost:
    """Lower bounds on scale-out costs on one cycle's topology, built lazily per affinity level."""

    def __init__(self, index: FreeIndex) -> None:
        self._index = index
        self._offers: dict[str, set[Offer]] = {}

    def of(self, needs: ServiceRequirements, wanted: dict[str, int]) -> float:
        """The least cost of placing ``wanted`` instances per role in one domain of the
        service's affinity, on an empty cluster of unlimited capacity; every GPU unplaced if
        no domain offers a type each role accepts."""
        best = SHORTFALL_WEIGHT * sum(
            count * needs.role(role).gpus_per_instance for role, count in wanted.items()
        )
        for offer in self._offers_of(needs.affinity):
            classes = dict(offer)
            total = 0.0
            for role, count in wanted.items():
                role_needs = needs.role(role)
                prices = [
                    gpu_cost(classes[t], t != role_needs.preferred_gpu_type)
                    for t in role_needs.gpu_types
                    if t in classes
                ]
                if not prices:
                    break
                total += count * role_needs.gpus_per_instance * min(prices)
            else:
                best = min(best, total)
        return best

    def _offers_of(self, affinity: str) -> set[Offer]:
        if affinity not in self._offers:
            self._offers[affinity] = {
                tuple((gpu_type, Priority(p)) for gpu_type, p in offer)
                for offer in self._index.offers(affinity)
            }
        return self._offers[affinity]
