"""Paged KV blocks with prefix caching: eviction order, hit cap, and what survives a free."""

from __future__ import annotations

from simulator.kv_blocks import BlockPool


def test_null_block_is_not_allocatable():
    pool = BlockPool(8, 16, enable_caching=True)
    assert pool.num_free == pool.num_blocks == 7
    assert pool.allocate(0, 7 * 16)
    assert not pool.allocate(1, 1)


def test_freed_request_keeps_its_full_blocks_until_they_are_reused_tail_first():
    pool = BlockPool(8, 16, enable_caching=True)  # 7 usable blocks
    assert pool.allocate(0, 100)  # 7 blocks, the last one partly filled
    pool.cache_full_blocks(0, 100)  # 6 full blocks hashed
    pool.free(0)
    assert pool.num_free == 7
    # Up to 99 of its 100 tokens could be reused: the 6 full blocks.
    assert pool.cached_blocks(0, 100) == 6
    # Another request takes 2 blocks: the freed request's tail (the partial block, then
    # block 5) is evicted first, its head survives.
    assert pool.allocate(1, 32)
    assert pool.cached_blocks(0, 100) == 5
    assert pool.num_free == 5


def test_a_hit_always_leaves_one_token_to_compute():
    pool = BlockPool(8, 16, enable_caching=True)
    assert pool.allocate(0, 64)
    pool.cache_full_blocks(0, 64)
    pool.free(0)
    # All 4 blocks are cached, but the pass needs at least the last token's logits.
    assert pool.cached_blocks(0, 64) == 3
    pool.take_cached(0, 3)
    assert pool.held(0) == 3 and pool.num_free == 4
    assert pool.allocate(0, 64)
    assert pool.held(0) == 4


def test_without_caching_nothing_is_hit():
    pool = BlockPool(8, 16, enable_caching=False)
    assert pool.allocate(0, 64)
    pool.cache_full_blocks(0, 64)
    pool.free(0)
    assert pool.cached_blocks(0, 64) == 0


def test_blocks_are_hashed_only_when_full():
    pool = BlockPool(8, 16, enable_caching=True)
    assert pool.allocate(0, 40)
    pool.cache_full_blocks(0, 40)  # 2 full blocks, 1 partial
    assert pool.allocate(0, 48)
    pool.cache_full_blocks(0, 48)  # the third block is now full too
    pool.free(0)
    assert pool.cached_blocks(0, 60) == 3
