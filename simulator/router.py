"""Routing: each request goes to the instance of its role with least work, or, for prefill with
prefix caching, to the one that already holds most of its prompt.

What "work" means is the instance's business (``router_load``): queued prompt tokens for a
prefill instance, the footprints of routed, unfinished requests for a decode instance. Ties go
to the lowest index, which keeps runs deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Protocol, TypeVar


class Routable(Protocol):
    """An instance the router can compare."""

    router_load: int


T = TypeVar("T", bound=Routable)

_LOAD = attrgetter("router_load")


def shortest_queue(instances: Sequence[T]) -> T:
    """The instance with the smallest ``router_load`` (the first one on ties)."""
    return min(instances, key=_LOAD)


def longest_cached_prefix(
    instances: Sequence[T], cached_blocks: Callable[[T], int], slack_tokens: int
) -> T:
    """The instance caching the longest prefix of the request (``cached_blocks``), unless its
    ``router_load`` exceeds the shortest queue's by more than ``slack_tokens``; then, or when
    no instance has a hit, the shortest queue. Equal hits go to the shorter queue.

    A hit saves its prefix's compute only if the request does not wait longer than that
    for it: the slack bounds the extra queue a hit may cost.
    """
    shortest = min(instances, key=_LOAD)
    best, best_hits = shortest, 0
    for instance in instances:
        hits = cached_blocks(instance)
        if hits > best_hits or (
            hits == best_hits and hits and instance.router_load < best.router_load
        ):
            best, best_hits = instance, hits
    if best_hits == 0 or best.router_load - shortest.router_load > slack_tokens:
        return shortest
    return best
