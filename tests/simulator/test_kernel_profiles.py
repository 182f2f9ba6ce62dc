"""Kernel efficiencies read off Vidur's operator profiles, and the engine that uses them."""

from __future__ import annotations

import polars as pl

from simulator.engine_calibration import engine_efficiency
from simulator.kernel_profiles import (
    COMPUTE_MIN_TOKENS,
    STREAMING_MAX_TOKENS,
    decode_attention_samples,
    kernel_efficiency,
    linear_layer_samples,
    streaming_medians,
)


def test_linear_operators_stream_weights_when_small_and_compute_when_large():
    linear = linear_layer_samples()
    assert set(linear["gpu"]) == {"A100-80GB", "H100-SXM"}
    small = linear.filter(pl.col("num_tokens") <= STREAMING_MAX_TOKENS)
    large = linear.filter(pl.col("num_tokens") >= COMPUTE_MIN_TOKENS)
    # Measured: weights stream at 66-80% of peak bandwidth, large passes reach 66-78% of peak
    # FLOPS; neither exceeds the spec sheet.
    assert small["bandwidth_fraction"].min() > 0.6 and small["bandwidth_fraction"].max() < 0.85
    assert large["flops_fraction"].min() > 0.6 and large["flops_fraction"].max() < 0.85
    assert large["bandwidth_fraction"].max() < 0.25  # compute-bound: far from streaming


def test_decode_attention_reaches_its_bandwidth_past_the_launch_floor():
    attention = decode_attention_samples()
    tiny = attention.filter(pl.col("kv_bytes") < 2**20)
    large = attention.filter(pl.col("kv_bytes") >= 256 * 2**20)
    assert tiny["bandwidth_fraction"].max() < 0.1  # ~15 us a kernel whatever it reads
    assert 0.6 < large["bandwidth_fraction"].median() < 0.85


def test_weights_and_kv_stream_alike_so_one_mbu_serves_both():
    medians = streaming_medians()
    assert abs(medians["weights"] - medians["kv"]) < 0.03


def test_the_colocated_engine_runs_at_the_kernels_efficiencies():
    kernels = kernel_efficiency()
    engine = engine_efficiency()
    assert (engine.mfu, engine.mbu) == (kernels.mfu, kernels.mbu) == (0.71, 0.76)
    assert kernels.compute_samples > 100 and kernels.streaming_samples > 1_000
    # The per-pass overhead Argonne's whole-engine runs add on top: a few milliseconds.
    assert 0.001 < engine.step_overhead_s < 0.005
