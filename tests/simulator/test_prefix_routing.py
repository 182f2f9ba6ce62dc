"""Prefix-cache-aware prefill routing (``ClusterSpec.prefix_aware_routing``)."""

from __future__ import annotations

from dataclasses import dataclass

from simulator import ClusterSpec, PoolSpec, simulate
from simulator.router import longest_cached_prefix
from simulator.traces import load_mooncake


@dataclass
class _Instance:
    router_load: int
    hits: int


def _pick(instances: list[_Instance], slack_tokens: int = 1_000) -> int:
    chosen = longest_cached_prefix(instances, lambda inst: inst.hits, slack_tokens)
    return instances.index(chosen)


def test_the_longest_cached_prefix_wins_within_the_slack():
    assert _pick([_Instance(0, 0), _Instance(900, 3), _Instance(100, 2)]) == 1


def test_a_queue_longer_than_the_slack_falls_back_to_the_shortest():
    assert _pick([_Instance(0, 0), _Instance(1_001, 3), _Instance(100, 2)]) == 0


def test_without_any_hit_it_is_join_shortest_queue():
    assert _pick([_Instance(50, 0), _Instance(10, 0), _Instance(10, 0)]) == 1


def test_equal_hits_go_to_the_shorter_queue():
    assert _pick([_Instance(0, 0), _Instance(500, 2), _Instance(200, 2)]) == 2


def _hit_rate(prefix_aware: bool) -> float:
    trace = load_mooncake()
    cluster = ClusterSpec(
        model="Llama-3.1-8B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=1, count=8),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=1, count=4),),
        prefix_aware_routing=prefix_aware,
    )
    done = simulate(trace.requests, cluster, service="m", start=trace.start).requests
    return done["cached_tokens"].sum() / done["input_tokens"].sum()


def test_prefix_aware_routing_raises_the_hit_rate_on_the_mooncake_slice():
    # Measured: 3.6% of prompt tokens hit under JSQ, 4.8% prefix-aware. Each instance's LRU
    # holds ~850 blocks, ~30 of these long prompts, so most multi-turn reuse comes too late
    # for any router; what routing can win is not to scatter a session over eight caches.
    jsq, aware = _hit_rate(False), _hit_rate(True)
    assert aware > 1.2 * jsq
