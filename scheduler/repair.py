"""Repair (ours, bounded): a local search over the order in which services are placed.

The greedy places services one after another, each on what the earlier ones left. Which
order is best is a packing question the paper's priority order does not answer: a flexible
high-priority service that went first may have taken the only nodes an inflexible one could
use, or a service on a pricier pool would fit a common one had another gone after it. After
the greedy pass, the repair tries changes of the order. A trial undoes a *window* of this
cycle's scale-outs (consecutive in the current order) and places them again in a new order;
services outside the window keep their placement. It is kept only if the window is better
read from the highest service priority down (:meth:`RepairingCycle._rank`): fewer unplaced
GPUs at the highest priority that differs, or as many at every priority and a lower cost. So
a lower-priority service never makes a higher one short, but it may move one onto a fallback
type or a pricier pool, as the objective of :mod:`scheduler.weights` says (an unplaced GPU
costs more than any placed one).

Candidates are the services that cost more than they could (:mod:`scheduler.least_cost`),
largest excess first. For a candidate at place ``i``:

1. **yield**: if it is short of, or on a fallback type for, some role, every service placed
   before it that holds GPUs of that role's preferred type, and could use another type for
   that role, is placed again avoiding it, first; then the candidate. Several services may
   have to yield together, where moving any one of them alone helps nobody;
2. **moves**, for every other place ``k``, nearest first: the candidate jumps over the service
   at ``k``, or that service jumps over the candidate; the services in between keep their
   order.

Each trial's window also takes the :data:`REPAIR_TAIL` services after it, which a move may
let pack better. The search goes through the candidates in passes, recomputing them after a
pass that kept a trial; it stops after a pass that kept none, or after ``REPAIR_WORK // nodes``
re-placements of one service. The bound shrinks as the fleet grows: there a re-placement scans
more free-GPU profiles, and the cycle must stay within its time target at 10,000 nodes
(docs/scheduler.md gives the figures). A cycle whose every service sits at its least cost
runs no trial.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from scheduler.least_cost import LeastCost
from scheduler.scale_out import ScaleOutCycle

#: Re-placements of one service the repair may spend in a cycle, times the fleet's nodes.
REPAIR_WORK = 200_000
#: Services after a trial's window that the trial places again too.
REPAIR_TAIL = 8

#: A trial: where its window starts and stops in the order, the window's new order, and the
#: GPU types some of its services avoid.
_Trial = tuple[int, int, list[str], dict[str, frozenset[str]]]


class RepairingCycle(ScaleOutCycle):
    """A scale-out cycle view that can repair its placements (module docstring)."""

    def repair(self) -> None:
        """Change the placement order while that lowers shortfall or cost."""
        order = [s for s, (_, wanted) in self.requests.items() if any(wanted.values())]
        least = LeastCost(self.index)
        budget = REPAIR_WORK // len(self.topology.nodes)
        improved = True
        while improved:
            improved = False
            excess = {s: self._cost(s) - least.of(*self.requests[s]) for s in order}
            candidates = sorted((s for s in order if excess[s] > 0), key=lambda s: -excess[s])
            for service in candidates:
                if self._cost(service) <= least.of(*self.requests[service]):
                    continue
                for start, stop, moved, avoiding in self._trials(order, order.index(service)):
                    tail = order[stop : stop + REPAIR_TAIL]
                    window = order[start:stop] + tail
                    budget -= len(window)
                    if budget < 0:
                        return
                    if self._try_order(window, moved + tail, avoiding):
                        order = order[:start] + moved + order[stop:]
                        improved = True
                        break

    def _trials(self, order: list[str], i: int) -> Iterator[_Trial]:
        """Every trial of the module docstring for the candidate ``order[i]``, in order."""
        yielding = self._yield_trial(order, i)
        if yielding is not None:
            yield yielding
        for k in sorted(range(len(order)), key=lambda k: (abs(k - i), k)):
            if k != i:
                start, stop = min(i, k), max(i, k) + 1
                for moved in _moves(order[start:stop], candidate_first=k > i):
                    yield start, stop, moved, {}

    def _yield_trial(self, order: list[str], i: int) -> _Trial | None:
        """The yield trial for the candidate ``order[i]`` (module docstring), or None when it
        lacks nothing or no earlier service could yield."""
        service = order[i]
        needs, wanted = self.requests[service]
        added = self.added(service)
        lacking = {role for role, count in wanted.items() if added[role] < count}
        for step in self.journal.get(service, ()):
            if (
                self.topology.node(step.node_id).gpu_type
                != needs.role(step.role).preferred_gpu_type
            ):
                lacking.add(step.role)
        avoid = frozenset(needs.role(role).preferred_gpu_type for role in lacking)
        yielding = [k for k in range(i) if self._could_yield(order[k], avoid)]
        if not avoid or not yielding:
            return None
        start = yielding[0]
        others = [order[k] for k in range(start, i) if k not in yielding]
        trial = [order[k] for k in yielding] + [service] + others
        return start, i + 1, trial, {order[k]: avoid for k in yielding}

    def _could_yield(self, service: str, avoid: frozenset[str]) -> bool:
        """Whether the service holds GPUs of an avoided type on a role that accepts another."""
        needs = self.requests[service][0]
        return any(
            self.topology.node(step.node_id).gpu_type in avoid
            and set(needs.role(step.role).gpu_types) - avoid
            for step in self.journal.get(service, ())
        )

    def _rank(self, services: list[str]) -> tuple[float, ...]:
        """Unplaced GPUs per service priority, highest first, then the total cost."""
        short: Counter[int] = Counter()
        for service in services:
            needs, wanted = self.requests[service]
            added = self.added(service)
            for role, count in wanted.items():
                short[needs.priority] += needs.role(role).gpus_per_instance * (count - added[role])
        return (*(short[p] for p in sorted(short, reverse=True)), sum(map(self._cost, services)))

    def _try_order(
        self,
        window: list[str],
        trial: list[str],
        avoiding: dict[str, frozenset[str]],
    ) -> bool:
        """Re-place the window's services in the trial order, some avoiding GPU types
        (:meth:`ScaleOutCycle._place`); keep it only if it ranks better."""
        before, created = self._rank(window), self.groups_created
        undone = {name: self._unplace(name) for name in window}
        for name in trial:
            self._place(name, avoiding.get(name, frozenset()))
        if self._rank(window) < before:
            return True
        for name in window:
            self._unplace(name)
        self.groups_created = created
        for name in window:
            self._redo(name, undone[name])
        return False


def _moves(window: list[str], *, candidate_first: bool) -> tuple[list[str], list[str]]:
    """The two reorders of a window between a candidate and another service: one of the
    two ends jumps over the other, the services in between keep their order.

    ``candidate_first`` says the candidate is the window's first service (else its last).
    """
    first, middle, last = window[0], window[1:-1], window[-1]
    if candidate_first:
        return [*middle, last, first], [last, first, *middle]
    return [last, first, *middle], [*middle, last, first]
