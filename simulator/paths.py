"""Where the real data the simulator ships with lives (``data/`` at the repository root).

The product never reads ``../shared`` at run time: everything it needs is copied under ``data/``
with its licence and origin (``data/traces/README.md``, ``data/perf/README.md``).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: Azure LLM inference trace 2023, conversation (CC BY 4.0): the embedded default workload.
AZURE_CONV_CSV = DATA_DIR / "traces" / "AzureLLMInferenceTrace_conv.csv"
#: First 500 requests of the Mooncake FAST'25 conversation trace (Apache-2.0).
MOONCAKE_CONV_SLICE_JSONL = DATA_DIR / "traces" / "mooncake_conversation_first500.jsonl"
#: The whole Mooncake FAST'25 conversation trace, 12,031 requests (Apache-2.0).
MOONCAKE_CONV_JSONL = DATA_DIR / "traces" / "mooncake_conversation_trace.jsonl"
#: ServeGen language m-large, clients 20, 57 and 140, day 1 (Apache-2.0).
SERVEGEN_SLICE_CSV_GZ = DATA_DIR / "traces" / "servegen_language_m-large_3clients_day1.csv.gz"
#: The same three clients over all 14 days (Apache-2.0): multi-day request-level workloads.
SERVEGEN_3CLIENTS_14DAYS_CSV_GZ = (
    DATA_DIR / "traces" / "servegen_language_m-large_3clients_14days.csv.gz"
)
#: ServeGen's three language services (Apache-2.0), each's clients summed per 10-minute window
#: over 14 days: m-large (162 clients, the default workload), m-mid (109) and m-small (43).
SERVEGEN_RATES_CSV_GZ = {
    service: DATA_DIR / "traces" / f"servegen_language_{service}_14days_aggregate.csv.gz"
    for service in ("m-large", "m-mid", "m-small")
}
#: Splitwise measured prefill/decode latencies, Llama2-70B and BLOOM-176B on A100/H100 (MIT).
SPLITWISE_PERF_CSV = DATA_DIR / "perf" / "splitwise_perf_model.csv"
#: Argonne LLM-Inference-Bench, vLLM on one A100-40GB or H100, 7-8B models (BSD-3).
ARGONNE_VLLM_CSV = DATA_DIR / "vllm_bench" / "argonne_vllm_1gpu.csv"
#: Real vLLM 0.19 runs (LLMServingSim, MIT): one folder per run, replayed by simulator.fidelity.
VLLM_BENCH_DIR = DATA_DIR / "vllm_bench" / "llmservingsim"
#: Vidur's per-operator profiles of a Llama layer's non-attention operators (MIT), by GPU and
#: the model whose layer was timed.
VIDUR_LINEAR_CSVS = {
    ("A100-80GB", "Llama-3-8B"): DATA_DIR / "perf" / "vidur" / "a100_Meta-Llama-3-8B_mlp.csv",
    ("A100-80GB", "Llama-2-7B"): DATA_DIR / "perf" / "vidur" / "a100_Llama-2-7b-hf_mlp.csv",
    ("H100-SXM", "Llama-2-7B"): DATA_DIR / "perf" / "vidur" / "h100_Llama-2-7b-hf_mlp.csv",
}
#: Vidur's FlashAttention prefill and decode kernel timings on A100-80GB, 70B-class layer (MIT).
VIDUR_ATTENTION_CSV = DATA_DIR / "perf" / "vidur" / "a100_legacy_attention.csv"
#: LLMServingSim's per-operator profiles of Llama-3.1-8B's linear operators (MIT), by GPU and
#: model: vLLM's kernels on the GPUs of the bundled vLLM runs.
LLMSERVINGSIM_LINEAR_CSVS = {
    (gpu, "Llama-3.1-8B"): DATA_DIR / "perf" / "llmservingsim" / f"{name}_Llama-3.1-8B_linear.csv"
    for gpu, name in (("RTX-4090", "RTX4090"), ("RTX-PRO-6000", "RTXPRO6000"))
}
#: The same profiles' decode attention kernel timings (MIT).
LLMSERVINGSIM_ATTENTION_CSVS = {
    (gpu, "Llama-3.1-8B"): DATA_DIR
    / "perf"
    / "llmservingsim"
    / f"{name}_Llama-3.1-8B_decode_attention.csv"
    for gpu, name in (("RTX-4090", "RTX4090"), ("RTX-PRO-6000", "RTXPRO6000"))
}
