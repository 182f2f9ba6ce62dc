"""The metric catalog: which exported series feed which canonical column, and how.

One home for the names the serving stacks export (as the DCGM exporter, vLLM V1, SGLang,
NVIDIA Dynamo and kube-state-metrics documentation gives them),
their kind (gauge, counter, histogram), their unit and how per-series values roll up to an
instance. The exposition reader applies these semantics itself; the Prometheus reader renders
PromQL from the same entries (:mod:`telemetry.ingest.promql`), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Unit conversions to the canonical unit, by declared source unit.
UNIT_SCALE = {"ratio": 1.0, "percent": 0.01, "s": 1.0, "ms": 1e-3, "count": 1.0, "bool": 1.0}

#: Auxiliary column: prompt tokens served from the prefix cache, subtracted from the total.
PREFIX_HITS = "_prefix_cache_hits_tps"
#: Auxiliary column: requests an instance finished per second (every request finishes once on
#: the instance that prefilled it), for an offered load derived from served work.
FINISHED_REQUESTS = "_finished_requests_rps"
#: Columns that are not canonical: read to compute others, never stored.
AUXILIARY = (PREFIX_HITS, FINISHED_REQUESTS)

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class Signal:
    """How one exported metric becomes one canonical column.

    Attributes
    ----------
    column : str
        The canonical column (or :data:`PREFIX_HITS`, or ``ready``).
    metric : str
        The metric family name as exported (``_total`` included for counters; the base name of
        a histogram, whose samples are ``<metric>_bucket``).
    kind : str
        ``gauge`` (time-averaged), ``counter`` (rate per second) or ``histogram`` (quantiles).
    unit : str
        The exported unit, a key of :data:`UNIT_SCALE`.
    rollup : str
        How the series of one instance combine: ``sum`` (engines, data-parallel ranks) or
        ``mean`` (GPUs of one pod).
    level : str
        ``instance`` for ``instance_samples``, ``service`` for ``service_load``.
    stack : str
        The exporter it comes from.
    """

    column: str
    metric: str
    kind: str
    unit: str
    rollup: str = "sum"
    level: str = "instance"
    stack: str = ""

    @property
    def sample_name(self) -> str:
        """The name of the samples that carry it in exposition text."""
        return f"{self.metric}_bucket" if self.kind == "histogram" else self.metric


def _stack(name: str, *signals: tuple) -> tuple[Signal, ...]:
    return tuple(Signal(*s, stack=name) for s in signals)


#: Default catalog. Order matters: for one column and one instance, the first metric present
#: wins (current names before deprecated ones) and the others are quarantined as superseded.
CATALOG: tuple[Signal, ...] = (
    *_stack(
        "vllm",
        ("prefill_tps_total", "vllm:prompt_tokens_total", "counter", "count"),
        (PREFIX_HITS, "vllm:prefix_cache_hits_total", "counter", "count"),
        ("decode_tps", "vllm:generation_tokens_total", "counter", "count"),
        (FINISHED_REQUESTS, "vllm:request_success_total", "counter", "count"),
        ("queue_depth", "vllm:num_requests_waiting", "gauge", "count"),
        ("running_requests", "vllm:num_requests_running", "gauge", "count"),
        ("kv_usage_ratio", "vllm:kv_cache_usage_perc", "gauge", "ratio", "mean"),
        ("kv_usage_ratio", "vllm:gpu_cache_usage_perc", "gauge", "ratio", "mean"),
        ("ttft", "vllm:time_to_first_token_seconds", "histogram", "s"),
        ("tbt", "vllm:inter_token_latency_seconds", "histogram", "s"),
        ("tbt", "vllm:time_per_output_token_seconds", "histogram", "s"),
    ),
    *_stack(
        "sglang",
        ("prefill_tps_total", "sglang:prompt_tokens_total", "counter", "count"),
        (PREFIX_HITS, "sglang:cached_tokens_total", "counter", "count"),
        ("decode_tps", "sglang:generation_tokens_total", "counter", "count"),
        (FINISHED_REQUESTS, "sglang:num_requests_total", "counter", "count"),
        ("queue_depth", "sglang:num_queue_reqs", "gauge", "count"),
        ("running_requests", "sglang:num_running_reqs", "gauge", "count"),
        ("kv_usage_ratio", "sglang:token_usage", "gauge", "ratio", "mean"),
        ("ttft", "sglang:time_to_first_token_seconds", "histogram", "s"),
        ("tbt", "sglang:inter_token_latency_seconds", "histogram", "s"),
    ),
    *_stack(
        "dcgm",
        ("gpu_util_ratio", "DCGM_FI_DEV_GPU_UTIL", "gauge", "percent", "mean"),
        ("sm_active_ratio", "DCGM_FI_PROF_SM_ACTIVE", "gauge", "ratio", "mean"),
    ),
    *_stack(
        "kube-state-metrics",
        ("ready", "kube_pod_status_ready", "gauge", "bool", "mean"),
    ),
    *_stack(
        "dynamo",
        (
            "request_rate_rps",
            "dynamo_frontend_requests_total",
            "counter",
            "count",
            "sum",
            "service",
        ),
        (
            "input_tps",
            "dynamo_frontend_input_sequence_tokens_sum",
            "counter",
            "count",
            "sum",
            "service",
        ),
        (
            "output_tps",
            "dynamo_frontend_output_sequence_tokens_sum",
            "counter",
            "count",
            "sum",
            "service",
        ),
    ),
)

#: Columns computed as rates of counters: a series' first sample only sets their baseline, so
#: an instance's first (or last) interval may lack them without anything being wrong.
RATE_COLUMNS = frozenset(
    {s.column for s in CATALOG if s.kind == "counter"} | {"prefill_tps_cache_missed"}
)

#: Label names, in order of preference, that identify the instance a series belongs to.
INSTANCE_LABELS = ("pod", "instance")
#: Label names, in order of preference, that name the service when no flag or mapping does:
#: an explicit ``service`` label, else the served model, which every vLLM and SGLang series
#: carries as ``model_name`` and NVIDIA Dynamo's frontend as ``model``
#: (lib/runtime/src/metrics/prometheus_names.rs, ``labels::MODEL``).
SERVICE_LABELS = ("service", "model_name", "model")
#: Label names that carry the role; values other than the canonical roles are mapped below.
ROLE_LABELS = ("role", "worker_type")
ROLE_ALIASES = {
    "prefill": "prefill",
    "decode": "decode",
    "colocated": "colocated",
    "both": "colocated",
    "aggregated": "colocated",
}
#: Label names that carry the GPU model (DCGM's ``modelName`` is normalised, e.g. ``H100``).
GPU_TYPE_LABELS = ("gpu_type", "modelName")
#: Label names that tell the GPUs of one pod apart (their count is ``gpus_per_instance``).
GPU_LABELS = ("gpu", "UUID")
#: Labels the kube-state-metrics readiness series must have to mean "ready".
READY_CONDITION = ("condition", "true")


def gpu_model(name: str | None) -> str | None:
    """Short GPU type from a DCGM ``modelName``: ``NVIDIA H100 80GB HBM3`` -> ``H100``."""
    if not name:
        return None
    words = name.removeprefix("NVIDIA ").strip()
    return words.split(" ")[0].split("-")[0] or None
