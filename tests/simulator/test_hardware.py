"""Spec sheets and model configurations are internally consistent and cited."""

from __future__ import annotations

import pytest

from simulator.hardware import GPUS, MODELS

REQUIRED_GPUS = {"A100-80GB", "H100-SXM", "H20", "L20", "L40S", "RTX-4090", "RTX-PRO-6000"}
REQUIRED_MODELS = {"Llama-2-70B", "Llama-3.1-8B", "Llama-3.1-70B", "Qwen3-30B-A3B", "Qwen3-32B"}


def test_registries_cover_the_required_parts_with_citations():
    assert set(GPUS) >= REQUIRED_GPUS
    assert set(MODELS) >= REQUIRED_MODELS
    for gpu in GPUS.values():
        assert gpu.source and gpu.dense_bf16_tflops > 0 and gpu.memory_bandwidth_gbps > 0
    for model in MODELS.values():
        assert "huggingface.co" in model.source


@pytest.mark.parametrize("name", sorted(REQUIRED_MODELS))
def test_architecture_matches_the_published_parameter_count(name):
    model = MODELS[name]
    assert model.architecture_params / 1e9 == pytest.approx(model.params_b, rel=0.01)


def test_derived_quantities_of_llama_3_1_70b():
    model = MODELS["Llama-3.1-70B"]
    # 80 layers x (K and V) x 8 KV heads x 128 dims x 2 bytes.
    assert model.kv_bytes_per_token == 327_680
    assert model.weight_bytes == pytest.approx(141.1e9)
    assert not model.is_moe


def test_qwen3_moe_activates_a_tenth_of_its_weights():
    model = MODELS["Qwen3-30B-A3B"]
    active = (
        model.num_layers
        * (
            model.attention_params_per_layer
            + model.experts_per_token * model.expert_params
            + model.router_params_per_layer
        )
        + 2 * model.vocab_size * model.hidden_size
    )
    assert model.is_moe
    assert active / 1e9 == pytest.approx(3.3, rel=0.05)  # model card: 3.3B activated
