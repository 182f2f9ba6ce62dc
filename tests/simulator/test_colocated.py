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
    assert sim.instances[0].ranks[0].free_blocks == 600


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
