"""The roofline model: regimes, monotonicity, memory planning, and the measured fit error."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simulator.calibration import (
    HELD_OUT_FRACTION,
    default_calibration,
    default_efficiency,
    fit_efficiency,
    load_splitwise_points,
)
from simulator.engine_calibration import engine_efficiency
from simulator.hardware import GPUS, MODELS
from simulator.perf_model import PerfModel


@pytest.fixture(scope="module")
def h20_70b() -> PerfModel:
    return PerfModel(MODELS["Llama-3.1-70B"], GPUS["H20"], 4, default_efficiency())


@pytest.fixture(scope="module")
def l20_70b() -> PerfModel:
    return PerfModel(MODELS["Llama-3.1-70B"], GPUS["L20"], 4, default_efficiency())


def test_decode_is_memory_bound_at_small_batch(h20_70b):
    step = h20_70b.decode(batch_size=1, kv_tokens=2_000)
    compute_s, memory_s, _ = h20_70b.ideal_seconds(h20_70b.decode_work(1, 2_000))
    assert memory_s.sum() > 20 * compute_s.sum()
    assert step.compute_fraction < 0.05
    # Stalled on memory, the weight GEMMs still hold warps on every SM: SM-active, not computing.
    assert step.sm_active_fraction > 5 * step.compute_fraction


def test_sm_activity_leaves_out_allreduce_and_overhead(l20_70b):
    step = l20_70b.prefill([8_192], [0])
    compute_s, memory_s, allreduce_s = l20_70b.ideal_seconds(l20_70b.prefill_work([8_192], [0]))
    assert allreduce_s > 0
    eff = l20_70b.efficiency
    assert step.kernel_s == pytest.approx(sum(np.maximum(compute_s / eff.mfu, memory_s / eff.mbu)))
    assert step.sm_active_fraction == step.kernel_s / step.duration_s < 1


def test_a_pass_sums_its_kernel_groups_rooflines():
    # A prompt chunk riding with a decode batch: its projections and FFN turn compute-bound
    # while the attention still streams every decoder's KV, so the pass costs the sum of each
    # group's bound, more than one bound over the whole pass would give.
    perf = PerfModel(
        MODELS["Llama-3.1-8B"], GPUS["RTX-PRO-6000"], 1, engine_efficiency("RTX-PRO-6000")
    )
    eff = perf.efficiency
    work = perf.step_work([1_500], [0], decode_batch=128, decode_kv_tokens=128 * 1_500)
    compute_s, memory_s, _ = perf.ideal_seconds(work)
    projections_ffn_compute_bound = compute_s[:2] / eff.mfu > memory_s[:2] / eff.mbu
    attention_memory_bound = memory_s[2] / eff.mbu > compute_s[2] / eff.mfu
    assert projections_ffn_compute_bound.all() and attention_memory_bound
    step = perf.cost(work)
    assert step.kernel_s == pytest.approx(sum(np.maximum(compute_s / eff.mfu, memory_s / eff.mbu)))
    one_bound_s = max(compute_s.sum() / eff.mfu, memory_s.sum() / eff.mbu)
    assert step.kernel_s > 1.2 * one_bound_s
    # A pure decode pass: every group memory-bound, the sum is the one bound.
    decode = perf.ideal_seconds(perf.decode_work(128, 128 * 1_500))
    assert perf.decode(128, 128 * 1_500).kernel_s == pytest.approx(decode[1].sum() / eff.mbu)


def test_prefill_is_compute_bound_at_large_batch(l20_70b, h20_70b):
    for perf in (l20_70b, h20_70b):
        work = perf.prefill_work([8_192], [0])
        compute_s, memory_s, _ = perf.ideal_seconds(work)
        assert compute_s.sum() > 10 * memory_s.sum()
    # On NVLink (H20) the all-reduce is a small share and the SMs compute most of the pass.
    assert h20_70b.prefill([8_192], [0]).compute_fraction > 0.7
    # Decode's compute share grows with the batch: H20 turns compute-bound at large batch.
    assert h20_70b.decode(256, 256 * 1_500).compute_fraction > (
        h20_70b.decode(8, 8 * 1_500).compute_fraction
    )


def test_latency_grows_with_tokens_batch_and_context(l20_70b, h20_70b):
    prefill = [l20_70b.prefill([t], [0]).duration_s for t in (128, 512, 2_048, 8_192)]
    assert prefill == sorted(prefill) and len(set(prefill)) == 4
    decode = [h20_70b.decode(b, b * 1_000).duration_s for b in (1, 8, 64, 256)]
    assert decode == sorted(decode) and len(set(decode)) == 4
    assert h20_70b.decode(16, 200_000).duration_s > h20_70b.decode(16, 2_000).duration_s
    # A prefix-cache hit saves compute: the same prompt with 2k cached tokens is cheaper.
    assert l20_70b.prefill([2_048], [2_048]).duration_s < l20_70b.prefill([4_096], [0]).duration_s


def test_kv_capacity_is_what_the_weights_leave(l20_70b):
    # 4 x 48 GB x 0.9 minus 141.1 GB of weights, at 327,680 bytes per token.
    assert l20_70b.kv_capacity_tokens(0.9) == pytest.approx(
        (4 * 48e9 * 0.9 - 141.1e9) / 327_680, rel=1e-3
    )
    with pytest.raises(ValueError, match="does not fit"):
        PerfModel(MODELS["Llama-3.1-70B"], GPUS["L20"], 2, default_efficiency()).kv_capacity_tokens(
            0.9
        )


def test_moe_decode_reads_more_experts_as_the_batch_grows():
    perf = PerfModel(MODELS["Qwen3-30B-A3B"], GPUS["H100-SXM"], 1, default_efficiency())
    one = perf.decode_work(1, 1_000).ffn.bytes_per_gpu
    many = perf.decode_work(256, 1_000).ffn.bytes_per_gpu
    assert one < 0.25 * MODELS["Qwen3-30B-A3B"].weight_bytes < many


def test_fit_predicts_held_out_measurements():
    summary = default_calibration().error_summary()
    held_out = {row["phase"]: row for row in summary.filter("held_out").iter_rows(named=True)}
    # Measured: 14% (prefill) and 19% (decode) mean absolute relative error on held-out points.
    assert held_out["prefill"]["mean_rel_error"] < 0.18
    assert held_out["decode"]["mean_rel_error"] < 0.23
    assert held_out["prefill"]["max_rel_error"] < 0.45
    assert held_out["decode"]["max_rel_error"] < 0.45


def test_fit_never_sees_the_held_out_points():
    points = load_splitwise_points()
    n_configs = points.select("gpu", "tp", "prompt_tokens", "batch_size").n_unique()
    held_configs = (
        points.filter("held_out").select("gpu", "tp", "prompt_tokens", "batch_size").n_unique()
    )
    assert held_configs == round(HELD_OUT_FRACTION * n_configs)
    scrambled = points.with_columns(
        measured_s=pl.when("held_out").then(pl.col("measured_s") * 2).otherwise("measured_s")
    )
    assert fit_efficiency(scrambled).efficiency == default_calibration().efficiency


def test_efficiencies_are_physical():
    eff = default_efficiency()
    assert 0 < eff.mfu <= 1 and 0 < eff.mbu <= 1 and 0 < eff.link_util <= 1
    assert 0 < eff.step_overhead_s < 0.1


@pytest.mark.parametrize(("tp", "ep"), [(1, 2), (1, 4), (2, 4)])
def test_expert_exchange_gathers_every_rank_and_scatters_back(tp, ep):
    # vLLM's default allgather_reducescatter backend: each MoE layer sends a data-parallel
    # rank's hidden states to each of the other ep / tp - 1 ranks and gets their partial
    # outputs back, whichever experts the tokens picked.
    model = MODELS["Qwen3-30B-A3B"]
    perf = PerfModel(model, GPUS["RTX-PRO-6000"], tp, default_efficiency(), ep=ep)
    dense = PerfModel(model, GPUS["RTX-PRO-6000"], tp, default_efficiency())
    sent = (
        perf.decode_work(100, 1_000).allreduce_bytes_per_gpu
        - dense.decode_work(100, 1_000).allreduce_bytes_per_gpu
    )
    hidden_bytes = model.hidden_size * 2  # bf16
    assert sent == pytest.approx(2 * model.num_layers * (ep // tp - 1) * 100 * hidden_bytes)
