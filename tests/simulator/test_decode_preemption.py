"""vLLM-style preemption in P/D decode instances (``ClusterSpec.decode_preemption``): admission on
the KV held now, the newest running request preempted when growth overflows, its prefix
recomputed locally when it is readmitted."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from simulator import ClusterSpec, PoolSpec, simulate
from simulator.calibration import default_efficiency
from simulator.decode import DecodeInstance
from simulator.engine import _Simulation
from simulator.hardware import GPUS, MODELS
from simulator.perf_model import PerfModel
from simulator.recorder import Recorder
from simulator.request_table import RequestTable
from simulator.traces import canonical_frame

START = datetime(2024, 1, 1, tzinfo=UTC)
PERF = PerfModel(MODELS["Llama-2-70B"], GPUS["H100-SXM"], 8, default_efficiency())


def test_the_newest_request_is_preempted_and_recomputes_its_prefix():
    # Two requests of 1,000 + 60 tokens in room for 2,100: they both fit at admission, and
    # after 50 steps (2 x 1,050 tokens) the next step would overflow.
    requests = canonical_frame(
        arrival_s=[0.0, 0.0], input_tokens=[1_000, 1_000], output_tokens=[60, 60]
    )
    recorder = Recorder()
    table = RequestTable(requests)
    decode = DecodeInstance(0, PERF, 16, 2_100, table, recorder, preempt=True)
    for rid in (0, 1):
        decode.enqueue(rid, 0.0)
    assert decode.admit(0.0) == [0, 1]
    decode.join(0)
    decode.join(1)
    end_s = decode.start_stride(0.0)
    assert decode._stride_steps == 50  # stops where the KV runs out, not at a finish
    assert decode.finish_stride(end_s) == []
    resumed_s = decode.start_stride(end_s)  # request 1 (the newest) makes room
    assert decode.preemptions == 1 and recorder.preemption_instance == [0]
    assert decode._stride_steps == 9  # request 0 runs alone to its last token
    assert decode.finish_stride(resumed_s) == [0]
    assert table.finish_s[0] == resumed_s
    assert decode.admit(resumed_s) == []  # readmitted: no transfer, a recompute
    assert decode.recompute_pending
    recompute_end_s = decode.start_stride(resumed_s)
    # One prefill pass over its prompt and the 50 tokens it had generated.
    recompute_s = PERF.prefill([1_050], [0]).duration_s
    assert recompute_end_s == resumed_s + recompute_s
    assert recorder.pass_duration_s == [recompute_s] and recorder.pass_decode_tokens == [1]
    assert decode.finish_stride(recompute_end_s) == []
    last_s = decode.start_stride(recompute_end_s)
    assert decode._stride_steps == 8  # 50 steps + the recompute's token + 8 = 59 tokens
    assert decode.finish_stride(last_s) == [1]
    assert decode.idle and decode._held_tokens == 0
    passes = recorder.passes()
    assert passes.decode_tokens.sum() == 2 * 59


def test_a_recompute_that_samples_the_last_token_completes_the_request():
    # As above, but request 1 lacks one token when preempted: its recompute samples it.
    requests = canonical_frame(
        arrival_s=[0.0, 0.0], input_tokens=[1_000, 1_000], output_tokens=[52, 52]
    )
    table = RequestTable(requests)
    decode = DecodeInstance(0, PERF, 16, 2_100, table, Recorder(), preempt=True)
    for rid in (0, 1):
        decode.enqueue(rid, 0.0)
    decode.admit(0.0)
    decode.join(0)
    decode.join(1)
    now = decode.start_stride(0.0)
    assert decode.finish_stride(now) == []
    now_after = decode.start_stride(now)  # preempts request 1 after 50 of its 51 tokens
    assert decode.finish_stride(now_after) == [0]
    assert decode.admit(now_after) == [] and decode.recompute_pending
    end_s = decode.start_stride(now_after)
    assert decode.finish_stride(end_s) == [1]
    assert table.finish_s[1] == end_s
    assert decode.idle and decode._held_tokens == 0 and decode.router_load == 0


def _cluster(decode_capacity_tokens: int | None, preemption: bool = True) -> ClusterSpec:
    """Llama-2-70B, one prefill and one decode DGX-H100 instance, with a memory fraction
    that leaves about ``decode_capacity_tokens`` of KV (None: the usual 0.9)."""
    fraction = 0.9
    if decode_capacity_tokens is not None:
        per_gpu = decode_capacity_tokens * MODELS["Llama-2-70B"].kv_bytes_per_token / 8
        fraction = (PERF.weight_bytes_per_gpu + per_gpu) / (GPUS["H100-SXM"].memory_gb * 1e9)
    return ClusterSpec(
        model="Llama-2-70B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=8, count=1),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=8, count=1),),
        decode_max_num_seqs=64,
        kv_memory_fraction=fraction,
        decode_preemption=preemption,
    )


@pytest.fixture(scope="module")
def burst() -> pl.DataFrame:
    """80 requests within 4 s: prompts of 300-2,000 tokens, 20-400 output tokens."""
    rng = np.random.default_rng(11)
    n = 80
    return canonical_frame(
        arrival_s=np.sort(rng.uniform(0.0, 4.0, n)).tolist(),
        input_tokens=rng.integers(300, 2_000, n).tolist(),
        output_tokens=rng.integers(20, 400, n).tolist(),
    )


def _run(requests: pl.DataFrame, cluster: ClusterSpec) -> _Simulation:
    sim = _Simulation(requests, cluster)
    sim.run()
    return sim


def test_a_full_decode_instance_preempts_and_every_request_still_completes(burst):
    sim = _run(burst, _cluster(decode_capacity_tokens=10_000))
    decode = sim.decode[0]
    assert decode.kv_capacity_tokens < 10_100
    assert decode.preemptions > 5
    assert len(sim.recorder.preemption_instance) == decode.preemptions
    table = sim.table
    assert not any(math.isnan(t) for t in table.finish_s)
    assert all(f >= t for f, t in zip(table.finish_s, table.first_token_s, strict=True))
    # Token accounting: decode steps and recompute passes emit every token but the first.
    passes = sim.recorder.passes()
    on_decode = passes.instance == decode.index
    assert passes.decode_tokens[on_decode].sum() == sum(o - 1 for o in table.output_tokens)
    # Held KV never exceeded the capacity, and all of it is released at the end.
    usage = np.array(sim.recorder.kv_usage_ratio)[
        np.array(sim.recorder.kv_instance) == decode.index
    ]
    assert usage.max() <= 1.0 and usage.max() > 0.95 and usage[-1] == 0.0
    assert decode.idle and decode.router_load == 0


def test_preemption_runs_are_deterministic(burst):
    cluster = _cluster(decode_capacity_tokens=10_000)
    first = simulate(burst, cluster, service="p", start=START)
    second = simulate(burst, cluster, service="p", start=START)
    assert first.requests.equals(second.requests)
    assert first.instance_samples.equals(second.instance_samples)


def test_with_room_for_everything_preemption_changes_no_request(burst):
    reserve = simulate(burst, _cluster(None, preemption=False), service="p", start=START)
    paged = simulate(burst, _cluster(None, preemption=True), service="p", start=START)
    assert reserve.requests.equals(paged.requests)


def test_paging_admits_more_than_reserving_in_the_same_memory(burst):
    # Reserving whole footprints keeps requests queued that paging runs at once: decode starts
    # earlier on average, even counting the preemptions' recomputes.
    cluster = _cluster(decode_capacity_tokens=10_000, preemption=False)
    reserve = simulate(burst, cluster, service="p", start=START).requests
    paged = simulate(
        burst, _cluster(decode_capacity_tokens=10_000), service="p", start=START
    ).requests
    wait = pl.col("decode_start_s") - pl.col("first_token_s")
    assert paged.select(wait.mean()).item() < reserve.select(wait.mean()).item()
