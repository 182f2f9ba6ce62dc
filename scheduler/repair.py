"""Repair (ours, bounded): re-place pairs of this cycle's scale-outs where that helps.

After every service has been placed, each one left short or on a fallback type may swap
places with up to :data:`REPAIR_RIVALS` services that took GPUs it accepts: both are undone
and placed again, it first. The swap is kept only if it leaves fewer unplaced GPUs read from
the highest service priority down, or as many and a lower cost; so a lower-priority service
never makes a higher one short, but may move it to a fallback type or a pricier pool.
"""

from __future__ import annotations

from collections import Counter

from scheduler.scale_out import ScaleOutCycle

#: Other services a short service may swap places with in :meth:`RepairingCycle.repair`: a bound on
#: the repair's work, which never touches a cycle where everything was placed.
REPAIR_RIVALS = 8


class RepairingCycle(ScaleOutCycle):
    """A scale-out cycle view that can repair its placements (module docstring)."""

    def repair(self) -> None:
        """Re-place pairs of this cycle's scale-outs where that lowers shortfall or cost.

        For each service left short, in processing order: up to :data:`REPAIR_RIVALS` other
        services that took GPUs of a type it accepts are tried in turn. Both scale-outs are
        undone, the short service is placed first, then the other; the swap is kept only if
        it is better read from the highest service priority down (:meth:`_rank`), so no
        service ends shorter than a lower-priority one makes it. The other service may move
        to fallback types or pricier pools to make room, as the objective says: an unplaced
        GPU costs more than any placed one.
        """
        for service in list(self.requests):
            rivals = self._rivals(service)
            for rival in rivals[:REPAIR_RIVALS]:
                if not self._wanting(service):
                    break
                self._try_swap(service, rival)

    def _wanting(self, service: str) -> bool:
        """Whether the service's scale-out is short, or placed on a fallback GPU type."""
        needs, wanted = self.requests[service]
        added = self.added(service)
        if any(count > added[role] for role, count in wanted.items()):
            return True
        return any(
            self.topology.node(step.node_id).gpu_type != needs.role(step.role).preferred_gpu_type
            for step in self.journal.get(service, ())
        )

    def _rivals(self, service: str) -> list[str]:
        """Other services holding this cycle's GPUs of a type the service accepts, most first."""
        if not self._wanting(service):
            return []
        needs = self.requests[service][0]
        accepted = set(needs.prefill.gpu_types) | set(needs.decode.gpu_types)
        held = Counter()
        for other, steps in self.journal.items():
            for step in steps:
                if other != service and self.topology.node(step.node_id).gpu_type in accepted:
                    held[other] += step.size
        return sorted(held, key=lambda other: (-held[other], other))

    def _rank(self, services: tuple[str, ...]) -> tuple[float, ...]:
        """Unplaced GPUs per service priority, highest first, then the total cost."""
        short: Counter[int] = Counter()
        for service in services:
            needs, wanted = self.requests[service]
            added = self.added(service)
            for role, count in wanted.items():
                short[needs.priority] += needs.role(role).gpus_per_instance * (count - added[role])
        return (*(short[p] for p in sorted(short, reverse=True)), sum(map(self._cost, services)))

    def _try_swap(self, service: str, rival: str) -> None:
        pair = (service, rival)
        before, created = self._rank(pair), self.groups_created
        undone = {name: self._unplace(name) for name in pair}
        for name in pair:
            self._place(name)
        if self._rank(pair) < before:
            return
        for name in pair:
            self._unplace(name)
        self.groups_created = created
        for name in pair:
            self._redo(name, undone[name])
