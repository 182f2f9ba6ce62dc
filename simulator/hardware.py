"""Spec sheets of GPUs and architectures of models: the inputs of the roofline performance model.

Only vendor figures live here; how fast a model actually runs on a GPU is the business of
:mod:`simulator.perf_model`, which combines these figures with efficiencies fitted on measured
latencies. Units: dense (no sparsity) BF16 tensor TFLOPS, GB = 10^9 bytes as datasheets print
them (we do not convert to GiB, which leaves HBM parts about 7% conservative), interconnect GB/s
as the datasheet's bidirectional per-GPU figure.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes per weight and per KV-cache element: every model here is served in BF16.
BF16_BYTES = 2


@dataclass(frozen=True)
class GpuSpec:
    """One GPU SKU as its datasheet describes it.

    Attributes
    ----------
    name : str
        Registry key, also the ``gpu_type`` written into telemetry.
    dense_bf16_tflops : float
        Peak BF16 tensor-core throughput without structured sparsity.
    memory_bandwidth_gbps : float
        Peak device-memory bandwidth, GB/s.
    memory_gb : float
        Device memory, GB.
    interconnect_gbps : float
        Intra-node GPU-to-GPU bandwidth, bidirectional, GB/s (NVLink where present, else PCIe).
    interconnect : str
        What that link is, for readers.
    source : str
        Citation of the datasheet the figures come from.
    """

    name: str
    dense_bf16_tflops: float
    memory_bandwidth_gbps: float
    memory_gb: float
    interconnect_gbps: float
    interconnect: str
    source: str


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer as its public Hugging Face ``config.json`` describes it.

    ``intermediate_size`` is the width of one SwiGLU FFN: the dense FFN for dense models, one
    expert (``moe_intermediate_size``) for mixture-of-experts models. ``head_dim`` is explicit
    because Qwen3 decouples it from ``hidden_size / num_heads``.

    Attributes
    ----------
    params_b : float
        Published total parameter count in billions (model card); sizes the weight footprint.
    num_experts, experts_per_token : int
        1 and 1 for dense models.
    source : str
        Where the configuration was read.
    """

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    params_b: float
    tied_embeddings: bool
    source: str
    num_experts: int = 1
    experts_per_token: int = 1

    @property
    def is_moe(self) -> bool:
        """Whether the FFN is a routed mixture of experts."""
        return self.num_experts > 1

    @property
    def q_dim(self) -> int:
        """Width of the query projection: the dimension attention scores are computed in."""
        return self.num_heads * self.head_dim

    @property
    def attention_params_per_layer(self) -> int:
        """Q, K, V and O projection weights of one layer (GQA: K and V are narrower)."""
        kv_dim = self.num_kv_heads * self.head_dim
        return 2 * self.hidden_size * self.q_dim + 2 * self.hidden_size * kv_dim

    @property
    def expert_params(self) -> int:
        """Weights of one SwiGLU FFN (gate, up, down): one expert, or the dense FFN."""
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def router_params_per_layer(self) -> int:
        """The MoE gate's weights; zero for dense models."""
        return self.hidden_size * self.num_experts if self.is_moe else 0

    @property
    def lm_head_params(self) -> int:
        """The output projection to the vocabulary, applied only to tokens that emit logits."""
        return self.vocab_size * self.hidden_size

    @property
    def architecture_params(self) -> int:
        """Parameter count implied by the configuration (norm weights omitted: under 0.01%).

        It is a consistency check on the configuration against ``params_b``.
        """
        per_layer = (
            self.attention_params_per_layer
            + self.num_experts * self.expert_params
            + self.router_params_per_layer
        )
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return self.num_layers * per_layer + embeddings

    @property
    def weight_bytes(self) -> float:
        """Memory the BF16 weights occupy, all experts included."""
        return self.params_b * 1e9 * BF16_BYTES

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token occupies across all layers (K and V, BF16)."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * BF16_BYTES


#: Spec sheets. A100 (40 and 80 GB) and H100-SXM have public latency measurements
#: (:mod:`simulator.calibration`, :mod:`simulator.engine_calibration`), and A100-80GB, H100-SXM,
#: RTX 4090 and RTX PRO 6000 public kernel timings (:mod:`simulator.kernel_profiles`); every
#: other GPU's performance is *derived*: its spec sheet times the efficiencies fitted on those.
GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec(
            name="A100-80GB",
            dense_bf16_tflops=312.0,
            memory_bandwidth_gbps=2039.0,
            memory_gb=80.0,
            interconnect_gbps=600.0,
            interconnect="NVLink 3",
            source=(
                "NVIDIA A100 Tensor Core GPU datasheet (2021), A100 80GB SXM: BF16 tensor 312 "
                "TFLOPS dense (624 sparse), HBM2e 2,039 GB/s, NVLink 600 GB/s"
            ),
        ),
        GpuSpec(
            name="A100-40GB",
            dense_bf16_tflops=312.0,
            memory_bandwidth_gbps=1555.0,
            memory_gb=40.0,
            interconnect_gbps=600.0,
            interconnect="NVLink 3",
            source=(
                "NVIDIA A100 Tensor Core GPU datasheet (2021), A100 40GB SXM: BF16 tensor 312 "
                "TFLOPS dense, HBM2 1,555 GB/s, NVLink 600 GB/s (the GPU of Argonne's Polaris, "
                "where LLM-Inference-Bench measured its A100 runs)"
            ),
        ),
        GpuSpec(
            name="H100-SXM",
            dense_bf16_tflops=989.0,
            memory_bandwidth_gbps=3350.0,
            memory_gb=80.0,
            interconnect_gbps=900.0,
            interconnect="NVLink 4",
            source=(
                "NVIDIA H100 Tensor Core GPU datasheet (2023), H100 SXM: BF16 tensor 1,979 "
                "TFLOPS with sparsity (989 dense), HBM3 3.35 TB/s, NVLink 900 GB/s"
            ),
        ),
        GpuSpec(
            name="H20",
            dense_bf16_tflops=148.0,
            memory_bandwidth_gbps=4000.0,
            memory_gb=96.0,
            interconnect_gbps=900.0,
            interconnect="NVLink 4",
            source=(
                "NVIDIA H20 product brief (2023, China market; not published on nvidia.com): "
                "FP16/BF16 tensor 148 TFLOPS dense, 96 GB HBM3 at 4.0 TB/s, NVLink 900 GB/s"
            ),
        ),
        GpuSpec(
            name="L20",
            dense_bf16_tflops=119.5,
            memory_bandwidth_gbps=864.0,
            memory_gb=48.0,
            interconnect_gbps=64.0,
            interconnect="PCIe Gen4 x16",
            source=(
                "NVIDIA L20 product brief (2023, China market; not published on nvidia.com): "
                "FP16/BF16 tensor 119.5 TFLOPS dense, 48 GB GDDR6 at 864 GB/s, PCIe Gen4 x16 64 "
                "GB/s bidirectional, no NVLink"
            ),
        ),
        GpuSpec(
            name="L40S",
            dense_bf16_tflops=362.05,
            memory_bandwidth_gbps=864.0,
            memory_gb=48.0,
            interconnect_gbps=64.0,
            interconnect="PCIe Gen4 x16",
            source=(
                "NVIDIA L40S datasheet (2023): BF16 tensor 362.05 TFLOPS dense (733 sparse), 48 "
                "GB GDDR6 at 864 GB/s, PCIe Gen4 x16 64 GB/s bidirectional"
            ),
        ),
        GpuSpec(
            name="RTX-4090",
            dense_bf16_tflops=165.2,
            memory_bandwidth_gbps=1008.0,
            memory_gb=24.0,
            interconnect_gbps=64.0,
            interconnect="PCIe Gen4 x16",
            source=(
                "NVIDIA Ada Lovelace GPU architecture whitepaper v1.1 (2023), GeForce RTX 4090: "
                "BF16 tensor with FP32 accumulate 165.2 TFLOPS dense (330.4 sparse), 24 GB "
                "GDDR6X at 1,008 GB/s, PCIe Gen4 x16"
            ),
        ),
        GpuSpec(
            name="RTX-PRO-6000",
            dense_bf16_tflops=503.8,
            memory_bandwidth_gbps=1792.0,
            memory_gb=96.0,
            interconnect_gbps=128.0,
            interconnect="PCIe Gen5 x16",
            source=(
                "NVIDIA RTX PRO 6000 Blackwell Workstation Edition datasheet (2025): 4,000 AI "
                "TOPS FP4 sparse, i.e. BF16 tensor 503.8 TFLOPS dense; 96 GB GDDR7 at 1,792 "
                "GB/s, PCIe Gen5 x16 128 GB/s bidirectional"
            ),
        ),
    )
}

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "Llama-2-70B",
            num_layers=80,
            hidden_size=8192,
            num_heads=64,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=28672,
            vocab_size=32000,
            params_b=68.98,
            tied_embeddings=False,
            source="huggingface.co/meta-llama/Llama-2-70b-hf config.json",
        ),
        ModelSpec(
            "Llama-2-7B",
            num_layers=32,
            hidden_size=4096,
            num_heads=32,
            num_kv_heads=32,
            head_dim=128,
            intermediate_size=11008,
            vocab_size=32000,
            params_b=6.74,
            tied_embeddings=False,
            source="huggingface.co/meta-llama/Llama-2-7b-hf config.json",
        ),
        ModelSpec(
            "Mistral-7B",
            num_layers=32,
            hidden_size=4096,
            num_heads=32,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=32000,
            params_b=7.24,
            tied_embeddings=False,
            source="huggingface.co/mistralai/Mistral-7B-v0.1 config.json",
        ),
        ModelSpec(
            "Llama-3.1-8B",
            num_layers=32,
            hidden_size=4096,
            num_heads=32,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=128256,
            params_b=8.03,
            tied_embeddings=False,
            source="huggingface.co/meta-llama/Llama-3.1-8B config.json",
        ),
        ModelSpec(
            "Llama-3.1-70B",
            num_layers=80,
            hidden_size=8192,
            num_heads=64,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=28672,
            vocab_size=128256,
            params_b=70.55,
            tied_embeddings=False,
            source="huggingface.co/meta-llama/Llama-3.1-70B config.json",
        ),
        ModelSpec(
            "Qwen3-30B-A3B",
            num_layers=48,
            hidden_size=2048,
            num_heads=32,
            num_kv_heads=4,
            head_dim=128,
            intermediate_size=768,
            vocab_size=151936,
            params_b=30.5,
            tied_embeddings=False,
            num_experts=128,
            experts_per_token=8,
            source="huggingface.co/Qwen/Qwen3-30B-A3B config.json (moe_intermediate_size=768)",
        ),
        ModelSpec(
            "Qwen3-32B",
            num_layers=64,
            hidden_size=5120,
            num_heads=64,
            num_kv_heads=8,
            head_dim=128,
            intermediate_size=25600,
            vocab_size=151936,
            params_b=32.8,
            tied_embeddings=False,
            source="huggingface.co/Qwen/Qwen3-32B config.json",
        ),
    )
}
