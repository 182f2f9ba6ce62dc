"""Per-instance prefix cache: which prompt blocks' KV a prefill instance still holds.

A request's cache hit is its longest run of leading block hashes the instance has seen; only
the rest of the prompt is computed. This is why prefill TPS *including* hits misleads as a load
signal (HeteroScale, Sec. 3.3.2) and why the telemetry reports cache-missed TPS separately.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrefixCache:
    """Least-recently-used set of KV block hashes, bounded by ``capacity_blocks``."""

    def __init__(self, capacity_blocks: int) -> None:
        self.capacity_blocks = capacity_blocks
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def hit_blocks(self, hashes: Sequence[int]) -> int:
        """Number of leading blocks of ``hashes`` present in the cache."""
        hits = 0
        for h in hashes:
            if h not in self._blocks:
                break
            hits += 1
        return hits

    def insert(self, hashes: Sequence[int]) -> None:
        """Mark the blocks as just computed, evicting the least recently used beyond capacity."""
        blocks = self._blocks
        for h in hashes:
            blocks[h] = None
            blocks.move_to_end(h)
        while len(blocks) > self.capacity_blocks:
            blocks.popitem(last=False)
