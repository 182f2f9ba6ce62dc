"""Colocated (vLLM-style) engine mechanics: conservation, KV and max_num_seqs bounds, chunking,
preemption, and canonical telemetry."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from simulator import simulate
from simulator.cluster import COLOCATED, ColocatedClusterSpec, EngineConfig, PoolSpec
from simulator.colocated import ColocatedInstance
from simulator.engine import _ColocatedSimulation
from simulator.traces import REQUEST_SCHEMA, validate_requests

START = datetime(2024, 1, 1, tzinfo=UTC)


def _requests(n: int, prompt: int, output: int, gap_s: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "arrival_s": [i * gap_s for i in range(n)],
            "input_tokens": [prompt] * n,
            "output_tokens": [output] * n,
            "prefix_hashes": [[] for _ in range(n)],
        },
        schema=REQUEST_SCHEMA,
    )


def _cluster(gpu: str = "RTX-4090", **engine) -> ColocatedClusterSpec:
    return ColocatedClusterSpec(
        model="Llama-3.1-8B",
        pool=PoolSpec(COLOCATED, gpu, tp=1, count=1),
        engine=EngineConfig(**engine),
    )


def _run(requests: pl.DataFrame, cluster: ColocatedClusterSpec) -> _ColocatedSimulation:
    sim = _ColocatedSimulation(validate_requests(requests), cluster)
    sim.run()
    return sim


@pytest.fixture(scope="module")
def mixed_requests() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 120
    return pl.DataFrame(
        {
            "arrival_s": np.sort(rng.uniform(0, 10, n)),
            "input_tokens": rng.integers(20, 3_000, n),
            "output_tokens": rng.integers(1, 400, n),
            "prefix_hashes": [[] for _ in range(n)],
        },
        schema=REQUEST_SCHEMA,
    )


def test_every_request_finishes_with_all_its_tokens(mixed_requests):
    sim = _run(mixed_requests, _cluster(max_num_seqs=32, num_gpu_blocks=600))
    table = sim.table
    first = np.array(table.first_token_s)
    finish = np.array(table.finish_s)
    arrival = np.array(table.arrival_s)
    assert np.isfinite(finish).all()
    assert (arrival < first).all() and (first <= finish).all()
    # Every output token beyond the first came from exactly one pass.
    expected = int((mixed_requests["output_tokens"] - 1).sum())
    assert sum(sim.recorder.pass_decode_tokens) == expected
    # Every KV block came back: nothing leaks.
    assert sim.instances[0].ranks[0].pool.num_free == 599  # block 0 is the null block


def test_running_never_exceeds_max_num_seqs(mixed_requests):
    sim = _run(mixed_requests, _cluster(max_num_seqs=8))
    assert max(sim.recorder.pass_batch_size) == 8


def test_kv_in_use_never_exceeds_capacity_and_preemption_recovers(mixed_requests):
    # 300 blocks x 16 = 4,800 tokens: a few long requests fill it, so decode growth preempts.
    sim = _run(mixed_requests, _cluster(num_gpu_blocks=300))
    assert max(sim.recorder.kv_usage_ratio) <= 1.0
    assert sim.instances[0].preemptions > 0
    assert np.isfinite(np.array(sim.table.finish_s)).all()


def test_prefill_is_chunked_under_the_token_budget():
    # One 5,000-token prompt under a 2,048 budget: three passes of 2,048, 2,048 and 904 tokens;
    # its first token comes from the third.
    sim = _run(_requests(1, 5_000, 3, 0.0), _cluster(max_num_batched_tokens=2_048))
    rec = sim.recorder
    assert rec.prefill_total_tokens == [2_048, 2_048, 904]
    assert rec.ttft_at_s == [rec.pass_start_s[2] + rec.pass_duration_s[2]]
    assert rec.pass_decode_tokens == [0, 0, 0, 1, 1]


def test_decode_and_prefill_share_a_step():
    # The second request's prompt rides in the same pass as the first one's decode token, and
    # the pass costs less than the two passes apart would (weights are read once).
    sim = _run(_requests(2, 1_000, 50, 0.05), _cluster())
    rec = sim.recorder
    mixed = [
        k
        for k in range(len(rec.pass_start_s))
        if rec.pass_decode_tokens[k] == 1 and rec.pass_batch_size[k] == 2
    ]
    assert mixed
    perf = sim.instances[0].perf
    apart = perf.prefill([1_000], [0]).duration_s + perf.decode(1, 1_002).duration_s
    assert rec.pass_duration_s[mixed[0]] < apart


def test_oversized_request_is_refused_with_its_row():
    with pytest.raises(ValueError, match="row 0"):
        _run(_requests(1, 5_000, 10, 0.0), _cluster(num_gpu_blocks=100))


def test_telemetry_is_canonical_with_role_colocated(mixed_requests):
    # 96 GB leaves room for every request: no preemption, so no prompt is recomputed.
    cluster = _cluster("RTX-PRO-6000")
    assert _run(mixed_requests, cluster).instances[0].preemptions == 0
    result = simulate(mixed_requests, cluster, service="chat", start=START, interval_s=5.0)
    samples = result.instance_samples
    assert set(samples["role"]) == {"colocated"}
    assert samples["prefill_tps_total"].sum() * 5.0 == pytest.approx(
        mixed_requests["input_tokens"].sum()
    )
    assert samples["decode_tps"].sum() * 5.0 == pytest.approx(
        (mixed_requests["output_tokens"] - 1).sum()
    )
    assert samples["ttft_p50_s"].drop_nulls().len() > 0
    assert samples["tbt_p50_s"].drop_nulls().len() > 0


def test_expert_parallel_ranks_step_in_lockstep():
    cluster = ColocatedClusterSpec(
        model="Qwen3-30B-A3B",
        pool=PoolSpec(COLOCATED, "RTX-PRO-6000", tp=1, count=1),
        engine=EngineConfig(data_parallel_size=2, enable_expert_parallel=True),
    )
    sim = _run(_requests(4, 500, 20, 0.0), cluster)
    instance: ColocatedInstance = sim.instances[0]
    assert instance.perf.ep == 2
    # Requests spread over both ranks; the group reports as one instance of 2 GPUs.
    assert sim.infos[0].gpus == 2
    assert max(sim.recorder.pass_batch_size) == 4


def _two_requests(first: tuple[int, int], second: tuple[int, int], gap_s: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "arrival_s": [0.0, gap_s],
            "input_tokens": [first[0], second[0]],
            "output_tokens": [first[1], second[1]],
            "prefix_hashes": [[], []],
        },
        schema=REQUEST_SCHEMA,
    )


# A (1,000 in, 200 out) runs; B's 3,000-token prompt has a first chunk that fits beside A (128
# blocks) but not as a whole (188 blocks) while A holds its 63-76 blocks: 220 usable blocks.
_KV_TIGHT = {"num_gpu_blocks": 221, "async_scheduling": False}


def test_full_sequence_admission_keeps_a_prompt_out_until_it_fits():
    requests = _two_requests((1_000, 200), (3_000, 5), 0.01)
    sim = _run(requests, _cluster(scheduler_reserve_full_isl=True, **_KV_TIGHT))
    table = sim.table
    assert sim.instances[0].preemptions == 0
    # B never shares a step with A: its first token comes after A finished.
    assert table.first_token_s[1] > table.finish_s[0]


def test_first_chunk_admission_thrashes_and_the_prefix_cache_saves_the_recompute():
    requests = _two_requests((1_000, 200), (3_000, 5), 0.01)
    runs = {
        caching: _run(
            requests,
            _cluster(scheduler_reserve_full_isl=False, enable_prefix_caching=caching, **_KV_TIGHT),
        )
        for caching in (False, True)
    }
    cached, uncached = runs[True], runs[False]
    for sim in runs.values():
        assert np.isfinite(np.array(sim.table.finish_s)).all()
    # Without the cache, B's first chunk fits beside A again right after each preemption: it
    # is admitted, computes 2,047 tokens and is preempted again, step after step.
    assert uncached.instances[0].preemptions > 10
    assert uncached.instances[0].prefix_hit_tokens == 0
    # With it, B is preempted once; resumed, it finds its 127 full blocks (2,032 tokens) still
    # cached, and waits until the rest fits.
    assert cached.instances[0].preemptions == 1
    assert cached.instances[0].prefix_hit_tokens == 2_032
    assert cached.table.cached_tokens[1] == 2_032
    assert sum(cached.recorder.prefill_missed_tokens) == 1_000 + 2_047 + (3_000 - 2_032)
    # The hits still count as prompt tokens processed.
    assert sum(cached.recorder.prefill_total_tokens) == 1_000 + 2_047 + 3_000


def _step_containing(sim: _ColocatedSimulation, at_s: float) -> int:
    rec = sim.recorder
    return next(
        k
        for k, start in enumerate(rec.pass_start_s)
        if start <= at_s < start + rec.pass_duration_s[k]
    )


@pytest.mark.parametrize("async_scheduling", [False, True])
def test_a_request_arriving_mid_step_joins_after_the_planned_step(async_scheduling):
    # A decodes alone; B arrives in the middle of one of A's steps k. The engine loop picks B
    # up when step k ends; without async scheduling B's prompt runs in step k+1, with it the
    # step k+1 was planned already, so B's prompt runs in step k+2.
    requests = _two_requests((100, 60), (100, 2), 0.3)
    sim = _run(requests, _cluster(async_scheduling=async_scheduling))
    rec = sim.recorder
    k = _step_containing(sim, 0.3)
    end = [s + d for s, d in zip(rec.pass_start_s, rec.pass_duration_s, strict=True)]
    assert sim.instances[0].queued_s[1] == end[k]
    joins = k + (2 if async_scheduling else 1)
    assert sim.table.first_token_s[1] == end[joins]
    assert rec.pass_batch_size[joins - 1] == 1 and rec.pass_batch_size[joins] == 2


def test_an_idle_engine_takes_a_request_at_once_even_with_async_scheduling():
    sim = _run(_requests(1, 500, 3, 0.0), _cluster(async_scheduling=True))
    rec = sim.recorder
    assert sim.instances[0].queued_s[0] == 0.0
    assert sim.table.first_token_s[0] == rec.pass_start_s[0] + rec.pass_duration_s[0]
