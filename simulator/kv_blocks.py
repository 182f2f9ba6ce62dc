"""One engine rank's paged KV blocks with vLLM's (V1) automatic prefix caching.

Facts from vLLM's ``vllm/v1/core/block_pool.py`` and ``kv_cache_manager.py`` (0.19):

- Block 0 is a reserved null block: ``num_gpu_blocks - 1`` blocks hold KV.
- Free blocks wait in one queue in eviction order; an allocation takes from its front and,
  if the block still carries a hash, drops it from the cache (eviction).
- A block is hashed once it is full; the hash chains over the block's tokens and its
  predecessor's hash, so a request's leading full blocks match those of any earlier sequence
  with the same tokens.
- A finished or preempted request's blocks return to the back of the queue in reverse order
  (its tail is evicted first) and keep their hashes: until reused, they can be hit again.
- A hit is the longest run of leading blocks found in the cache, capped so that at least one
  token is computed (the pass must produce logits). Hit blocks leave the free queue.

The simulated requests carry token counts, not tokens, so a block's hash here is
``(request id, block index)``: a request hits only its own blocks, which is what a preempted
request resumed later does. Prompts shared between requests are not matched.
"""

from __future__ import annotations

from collections import OrderedDict

#: What identifies a full block: (request id, block index within the request).
BlockKey = tuple[int, int]


class BlockPool:
    """Paged KV blocks of one rank: who holds which, the free queue, the prefix cache.

    Parameters
    ----------
    num_blocks : int
        Blocks the engine reports (``num_gpu_blocks``), the null block included.
    block_size : int
        Tokens per block.
    enable_caching : bool
        Keep freed full blocks' hashes so that they can be hit (``enable_prefix_caching``).
    """

    def __init__(self, num_blocks: int, block_size: int, enable_caching: bool) -> None:
        self.num_blocks = num_blocks - 1  # block 0 is vLLM's null block
        self.block_size = block_size
        self.enable_caching = enable_caching
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(1, num_blocks))
        self._key_of: dict[int, BlockKey] = {}  # hashed blocks
        self._cached: dict[BlockKey, int] = {}  # hash -> block
        self._held: dict[int, list[int]] = {}  # request -> its blocks, in token order
        self._hashed: dict[int, int] = {}  # request -> how many leading blocks are hashed

    @property
    def num_free(self) -> int:
        """Blocks an allocation may take: free ones, cached or not."""
        return len(self._free)

    def held(self, rid: int) -> int:
        """Blocks ``rid`` holds."""
        return len(self._held.get(rid, ()))

    def blocks_for(self, tokens: int) -> int:
        """Blocks that ``tokens`` tokens of one request occupy."""
        return -(-tokens // self.block_size)

    def cached_blocks(self, rid: int, num_tokens: int) -> int:
        """Leading blocks of ``rid`` still cached, leaving at least one of its ``num_tokens``
        tokens to compute."""
        if not self.enable_caching:
            return 0
        limit = (num_tokens - 1) // self.block_size
        hits = 0
        while hits < limit and (rid, hits) in self._cached:
            hits += 1
        return hits

    def take_cached(self, rid: int, hits: int) -> None:
        """Give ``rid`` back its first ``hits`` cached blocks (see :meth:`cached_blocks`)."""
        blocks = self._held.setdefault(rid, [])
        for index in range(hits):
            block = self._cached[(rid, index)]
            del self._free[block]
            blocks.append(block)
        self._hashed[rid] = hits

    def allocate(self, rid: int, tokens: int) -> bool:
        """Grow ``rid`` to hold ``tokens`` tokens, if enough blocks are free."""
        blocks = self._held.setdefault(rid, [])
        need = self.blocks_for(tokens) - len(blocks)
        if need > len(self._free):
            return False
        for _ in range(need):
            block, _ = self._free.popitem(last=False)
            key = self._key_of.pop(block, None)
            if key is not None:
                del self._cached[key]
            blocks.append(block)
        return True

    def cache_full_blocks(self, rid: int, tokens: int) -> None:
        """Hash the blocks of ``rid`` that ``tokens`` tokens fill (vLLM hashes them when the
        tokens are scheduled)."""
        if not self.enable_caching:
            return
        full = min(tokens // self.block_size, len(self._held[rid]))
        blocks = self._held[rid]
        for index in range(self._hashed.get(rid, 0), full):
            key = (rid, index)
            old = self._cached.get(key)
            if old is not None:  # recomputed while an older copy was still cached
                del self._key_of[old]
            self._cached[key] = blocks[index]
            self._key_of[blocks[index]] = key
        self._hashed[rid] = max(full, self._hashed.get(rid, 0))

    def free(self, rid: int) -> None:
        """Return every block of ``rid`` to the back of the free queue, tail first."""
        for block in reversed(self._held.pop(rid, [])):
            self._free[block] = None
        self._hashed.pop(rid, None)
