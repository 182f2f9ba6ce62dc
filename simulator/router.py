"""Join-shortest-queue routing: each request goes to the instance of its role with least work.

What "work" means is the instance's business (``router_load``): queued prompt tokens for a
prefill instance, resident plus pending KV tokens for a decode instance. Ties go to the lowest
index, which keeps runs deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
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
