"""Event skipping in P/D decode instances changes nothing but speed.

Golden outputs under ``golden/`` were written step by step (one event per decode step,
``DecodeInstance.max_stride_steps = 1``; see ``golden/README.md``); the stride implementation
must reproduce every request's times and every telemetry value, to rounding (relative 1e-9):
strides are timed in closed form, which matches the running sum of step durations to ~1e-15,
not bit for bit. Step durations are still bit for bit those of single steps. Regenerate the
goldens only from a trusted implementation:

    PYTHONPATH=. .venv/bin/python tests/simulator/test_event_skipping.py"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose

from simulator import ClusterSpec, PoolSpec, default_cluster, default_trace, simulate
from simulator.calibration import default_efficiency
from simulator.decode import DecodeInstance
from simulator.hardware import GPUS, MODELS
from simulator.perf_model import PerfModel
from simulator.recorder import Recorder
from simulator.request_table import RequestTable
from simulator.stride_clock import strides_elapsed_s
from simulator.traces import canonical_frame

GOLDEN = Path(__file__).parent / "golden"
START = datetime(2023, 11, 16, tzinfo=UTC)
HEAD_REQUESTS = 3_000
REQUEST_TIMES = ["first_token_s", "decode_start_s", "finish_s"]


def _splitwise(prefill: int, decode: int, max_num_seqs: int = 512) -> ClusterSpec:
    """Llama-2-70B on DGX-H100 prefill and decode machines (TP 8), SplitwiseSim's knobs."""
    return ClusterSpec(
        model="Llama-2-70B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=8, count=prefill),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=8, count=decode),),
        prefill_token_budget=2048,
        decode_max_num_seqs=max_num_seqs,
        kv_transfer_gbps=200 * 1024**3 / 1e9,
    )


#: name -> (cluster, arrival-rate factor). The last case caps decode batches at 32 sequences,
#: so admissions wait for finishes and decode queues build up.
CASES = {
    "default_cluster": (default_cluster, 1.0),
    "llama2_70b_2p2d_x4": (lambda: _splitwise(2, 2), 4.0),
    "llama2_70b_2p1d_32seqs_x4": (lambda: _splitwise(2, 1, max_num_seqs=32), 4.0),
}


def _run(name: str):
    make_cluster, factor = CASES[name]
    requests = (
        default_trace().requests.head(HEAD_REQUESTS).with_columns(pl.col("arrival_s") / factor)
    )
    return simulate(requests, make_cluster(), service="golden", start=START)


def _numeric_columns(frame: pl.DataFrame) -> list[str]:
    return [name for name, dtype in frame.schema.items() if dtype.is_numeric()]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    name = request.param
    return name, _run(name)


def test_request_times_match_the_step_by_step_golden(case):
    name, result = case
    golden = pl.read_parquet(GOLDEN / f"{name}_requests.parquet")
    ours = result.requests.select(REQUEST_TIMES)
    assert ours.height == golden.height
    for column in REQUEST_TIMES:
        assert ours[column].is_null().equals(golden[column].is_null()), column
        assert_allclose(
            ours[column].fill_null(0.0).to_numpy(),
            golden[column].fill_null(0.0).to_numpy(),
            rtol=1e-9,
            atol=0.0,
            err_msg=column,
        )


def test_telemetry_matches_the_step_by_step_golden(case):
    name, result = case
    golden = pl.read_parquet(GOLDEN / f"{name}_instance_samples.parquet")
    ours = result.instance_samples.select(golden.columns)
    assert ours.height == golden.height
    assert ours.select(pl.exclude(_numeric_columns(ours))).equals(
        golden.select(pl.exclude(_numeric_columns(golden)))
    )
    for column in _numeric_columns(golden):
        assert ours[column].is_null().equals(golden[column].is_null()), column
        assert_allclose(
            ours[column].cast(pl.Float64).fill_null(0.0).to_numpy(),
            golden[column].cast(pl.Float64).fill_null(0.0).to_numpy(),
            rtol=1e-9,
            atol=1e-12,
            err_msg=column,
        )


@pytest.mark.parametrize(
    ("model", "gpu", "tp"),
    [("Llama-2-70B", "H100-SXM", 8), ("Qwen3-30B-A3B", "H20", 2), ("Llama-3.1-8B", "L40S", 1)],
)
@pytest.mark.parametrize("batch", [1, 37, 512])
def test_a_stride_prices_each_step_exactly_as_a_single_step(model, gpu, tp, batch):
    perf = PerfModel(MODELS[model], GPUS[gpu], tp, default_efficiency())
    stride = perf.decode_stride(batch, 4_321, 300)
    for step in range(300):
        single = perf.decode(batch, 4_321 + step * batch)
        assert stride.duration_s[step] == single.duration_s
        assert stride.sm_active_fraction[step] == single.sm_active_fraction
        assert stride.compute_fraction[step] == single.compute_fraction


@pytest.mark.parametrize(
    ("model", "gpu", "tp"),
    [("Llama-2-70B", "H100-SXM", 8), ("Qwen3-30B-A3B", "H20", 2), ("Llama-3.1-8B", "L40S", 1)],
)
@pytest.mark.parametrize(("batch", "kv_tokens"), [(1, 10), (37, 4_321), (512, 2_000_000)])
def test_a_stride_clock_is_the_running_sum_of_its_step_durations(model, gpu, tp, batch, kv_tokens):
    perf = PerfModel(MODELS[model], GPUS[gpu], tp, default_efficiency())
    steps = 400
    clock = perf.stride_clock(batch, kv_tokens)
    durations = perf.decode_stride(batch, kv_tokens, steps).duration_s
    bounds = np.concatenate(([0.0], np.cumsum(durations)))
    elapsed = [clock.elapsed_s(k) for k in range(steps + 1)]
    assert_allclose(elapsed, bounds, rtol=1e-12, atol=0.0)
    # The array twin the recorder uses gives the very same floats.
    rows = np.array([clock], dtype=float)
    assert strides_elapsed_s(rows, [steps + 1], np.arange(steps + 1)).tolist() == elapsed
    # first_bound is bisect_left over the boundaries start + elapsed.
    start_s = 1234.5
    boundaries = [start_s + e for e in elapsed]
    rng = np.random.default_rng(7)
    for at_s in [start_s, *(start_s + rng.uniform(-0.1, 1.05) * elapsed[-1] for _ in range(50))]:
        for lo in (0, 1):
            expected = bisect.bisect_left(boundaries, at_s, lo, steps)
            assert clock.first_bound(start_s, at_s, lo, steps) == expected


def test_strides_one_after_another_are_timed_by_their_own_clocks():
    perf = PerfModel(MODELS["Llama-2-70B"], GPUS["H100-SXM"], 8, default_efficiency())
    clock, other = perf.stride_clock(512, 0), perf.stride_clock(7, 50_000)
    assert perf.stride_clocks([512], [0]).tolist() == [list(map(float, clock))]
    rows = np.array([other, clock, other], dtype=float)
    steps = np.concatenate([np.arange(40), np.arange(3_000), np.arange(40)])
    expected = [*map(other.elapsed_s, range(40)), *map(clock.elapsed_s, range(3_000))]
    expected += expected[:40]
    assert strides_elapsed_s(rows, [40, 3_000, 40], steps).tolist() == expected
    costs = perf.decode_stride(512, 0, 3_000)
    assert clock.elapsed_s(3_000) == pytest.approx(costs.duration_s.sum(), rel=1e-12)


@pytest.mark.parametrize(
    ("model", "gpu", "tp"),
    [("Llama-2-70B", "H100-SXM", 8), ("Qwen3-30B-A3B", "H20", 2), ("Llama-3.1-8B", "L40S", 1)],
)
def test_the_recorder_times_steps_with_the_engines_clock_bit_for_bit(model, gpu, tp):
    perf = PerfModel(MODELS[model], GPUS[gpu], tp, default_efficiency())
    rng = np.random.default_rng(5)
    batch = rng.integers(1, 513, 300)
    kv = rng.integers(0, 3_000_000, 300)
    rows = perf.stride_clocks(batch, kv)
    scalar = [perf.stride_clock(int(b), int(k)) for b, k in zip(batch, kv, strict=True)]
    assert rows.tolist() == [list(map(float, clock)) for clock in scalar]


@pytest.mark.parametrize(
    ("model", "gpu", "tp"),
    [("Llama-2-70B", "H100-SXM", 8), ("Qwen3-30B-A3B", "H20", 2), ("Llama-3.1-8B", "L40S", 1)],
)
def test_prefill_pricing_is_bit_for_bit_the_generic_cost(model, gpu, tp):
    perf = PerfModel(MODELS[model], GPUS[gpu], tp, default_efficiency())
    rng = np.random.default_rng(3)
    for _ in range(200):
        size = int(rng.integers(1, 6))
        new = [int(t) for t in rng.integers(1, 4_000, size)]
        cached = [int(c) for c in rng.integers(0, 3, size) * 512]
        for _ in range(2):  # priced, then from the per-token-count cache
            fast, generic = perf.prefill(new, cached), perf.cost(perf.prefill_work(new, cached))
            assert fast == generic


def _decode_instance(output_tokens: list[int]) -> tuple[DecodeInstance, Recorder]:
    requests = canonical_frame(
        arrival_s=[0.0] * len(output_tokens),
        input_tokens=[1_000] * len(output_tokens),
        output_tokens=output_tokens,
    )
    perf = PerfModel(MODELS["Llama-2-70B"], GPUS["H100-SXM"], 8, default_efficiency())
    recorder = Recorder()
    instance = DecodeInstance(0, perf, 16, 1_000_000, RequestTable(requests), recorder)
    for rid in range(len(output_tokens)):
        instance.enqueue(rid, 0.0)
    assert instance.admit(0.0) == list(range(len(output_tokens)))
    return instance, recorder


@pytest.mark.parametrize("output_tokens", [3, 42])
def test_a_stride_runs_to_the_next_finish_and_logs_every_step(output_tokens):
    instance, recorder = _decode_instance([output_tokens])
    instance.join(0)
    end_s = instance.start_stride(0.0)
    assert instance.finish_stride(end_s) == [0]
    passes = recorder.passes()
    steps = output_tokens - 1  # prefill emitted the first token
    assert passes.start_s.size == steps
    expected = [instance.perf.decode(1, 1_000 + k).duration_s for k in range(steps)]
    assert passes.duration_s.tolist() == expected
    # Step boundaries come in closed form: the running sum of the durations, to rounding.
    bounds = np.concatenate(([0.0], np.cumsum(expected)))
    assert passes.start_s[0] == 0.0
    assert_allclose(passes.start_s, bounds[:-1], rtol=1e-13)
    assert end_s == pytest.approx(bounds[-1], rel=1e-13)
    assert (passes.batch_size == 1).all() and (passes.decode_tokens == 1).all()


@pytest.mark.parametrize("first_output_tokens", [4, 50])
def test_a_request_arriving_mid_stride_joins_at_the_next_step_boundary(first_output_tokens):
    instance, recorder = _decode_instance([first_output_tokens, 10])
    instance.join(0)
    end_s = instance.start_stride(0.0)
    first_step_s = instance.perf.decode(1, 1_000).duration_s
    second_step_s = instance.perf.decode(1, 1_001).duration_s
    arrival_s = first_step_s + 0.5 * second_step_s  # during the second step
    instance.join(1)
    cut_s = instance.cut_stride(arrival_s)
    assert cut_s == pytest.approx(first_step_s + second_step_s, rel=1e-13)
    assert instance.cut_stride(arrival_s) is None  # already ends there
    assert cut_s < end_s
    assert instance.finish_stride(cut_s) == []
    instance.start_stride(cut_s)
    assert instance._requests.decode_start_s[1] == cut_s
    assert recorder.passes().start_s.size == 2


def _write_golden() -> None:
    """Write the goldens with event skipping off: one event per decode step."""
    DecodeInstance.max_stride_steps = 1
    GOLDEN.mkdir(exist_ok=True)
    for name in sorted(CASES):
        result = _run(name)
        result.requests.select(REQUEST_TIMES).write_parquet(
            GOLDEN / f"{name}_requests.parquet", compression="zstd", compression_level=22
        )
        result.instance_samples.write_parquet(
            GOLDEN / f"{name}_instance_samples.parquet", compression="zstd", compression_level=22
        )


if __name__ == "__main__":
    _write_golden()
