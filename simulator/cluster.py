"""What a simulated cluster is made of: pools of identical instances and the serving knobs.

A P/D disaggregated cluster (:class:`ClusterSpec`) has prefill and decode pools; a colocated
cluster (:class:`ColocatedClusterSpec`) runs whole vLLM engines that do both on the same GPUs,
the baseline P/D is compared against. The embedded default (:func:`default_cluster`) is the
paper's heterogeneous setup: prefill on L20 (compute per dollar), decode on H20 (memory
bandwidth per dollar), serving Llama-3.1-70B.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.hardware import GPUS, MODELS
from simulator.perf_model import Efficiency

PREFILL = "prefill"
DECODE = "decode"
COLOCATED = "colocated"


@dataclass(frozen=True)
class PoolSpec:
    """``count`` identical instances of one role, each spanning ``tp`` GPUs of ``gpu_type``."""

    role: str
    gpu_type: str
    tp: int
    count: int

    def __post_init__(self) -> None:
        if self.role not in (PREFILL, DECODE, COLOCATED):
            raise ValueError(
                f"pool role must be {PREFILL!r}, {DECODE!r} or {COLOCATED!r}, got {self.role!r}"
            )
        if self.gpu_type not in GPUS:
            raise ValueError(f"unknown gpu_type {self.gpu_type!r}; known: {sorted(GPUS)}")
        if self.tp < 1 or self.count < 0:
            raise ValueError(
                f"pool needs tp >= 1 and count >= 0, got tp={self.tp}, count={self.count}"
            )


@dataclass(frozen=True)
class ClusterSpec:
    """A P/D disaggregated deployment of one model.

    Attributes
    ----------
    model : str
        Key of :data:`simulator.hardware.MODELS`.
    prefill_pools, decode_pools : tuple of PoolSpec
        Instances per role; several pools of a role make it heterogeneous.
    prefill_token_budget : int
        Most cache-missed tokens a prefill batch computes; a longer prompt still runs, alone.
    decode_max_num_seqs : int
        Most requests a decode instance runs at once (vLLM's ``max_num_seqs``).
    kv_transfer_gbps : float
        Bandwidth of a prefill-to-decode KV transfer, GB/s. 25 GB/s is one 200 Gb/s RDMA NIC;
        one value for every pair until placement is modelled.
    kv_memory_fraction : float
        Share of GPU memory the engine may use for weights plus KV cache (vLLM's
        ``gpu_memory_utilization``, default 0.9); the rest is activations and runtime.
    prefix_block_tokens : int
        Tokens per prefix-hash block: must match how the trace hashed (512 for Mooncake).
    decode_preemption : bool
        Decode instances admit a request while the KV it holds now fits and preempt the most
        recently admitted one when growth overflows, to recompute it later (vLLM); False
        reserves each request's whole footprint at admission, so nothing is preempted.
    prefix_aware_routing : bool
        Route an arrival with prefix hashes to the prefill instance caching the longest prefix
        of its prompt, unless that instance's queue exceeds the shortest by more than
        ``prefill_token_budget`` tokens (one batch); False: join-shortest-queue.
    efficiency : Efficiency or None
        Roofline efficiencies; None uses the calibrated default.
    """

    model: str
    prefill_pools: tuple[PoolSpec, ...]
    decode_pools: tuple[PoolSpec, ...]
    prefill_token_budget: int = 8192
    decode_max_num_seqs: int = 256
    kv_transfer_gbps: float = 25.0
    kv_memory_fraction: float = 0.9
    prefix_block_tokens: int = 512
    decode_preemption: bool = False
    prefix_aware_routing: bool = False
    efficiency: Efficiency | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {sorted(MODELS)}")
        for role, pools in ((PREFILL, self.prefill_pools), (DECODE, self.decode_pools)):
            if any(p.role != role for p in pools):
                raise ValueError(f"{role}_pools holds a pool of another role")
            if sum(p.count for p in pools) < 1:
                raise ValueError(f"the cluster needs at least one {role} instance")
        if self.prefill_token_budget < 1 or self.decode_max_num_seqs < 1:
            raise ValueError("prefill_token_budget and decode_max_num_seqs must be >= 1")
        if self.kv_transfer_gbps <= 0 or not 0 < self.kv_memory_fraction <= 1:
            raise ValueError("kv_transfer_gbps must be > 0 and kv_memory_fraction in (0, 1]")

    def describe(self) -> str:
        """One line for logs, e.g. ``Llama-3.1-70B: 15 prefill x 4 L20, 3 decode x 4 H20``."""
        pools = (*self.prefill_pools, *self.decode_pools)
        return f"{self.model}: " + ", ".join(
            f"{p.count} {p.role} x {p.tp} {p.gpu_type}" for p in pools
        )


def default_cluster() -> ClusterSpec:
    """The embedded default: Llama-3.1-70B on 15 prefill instances of 4 x L20 and 3 decode
    instances of 4 x H20.

    TP 4 on L20 is the smallest degree that holds the 141 GB of BF16 weights (48 GB per GPU).
    On H20, TP 2 would fit but leave ~97k KV tokens per instance and a ~42 ms TBT floor; TP 4
    gives ~624k tokens and ~33 ms. Counts were chosen by simulating the Azure 2023 conversation
    trace (docs/simulator.md): with 15 prefill instances its busiest minute runs at ~82% prefill
    GPU utilisation with queues that drain within the minute (12 saturate at ~100%, 16 give
    ~76%); 3 decode instances keep TBT p99 within ~7% of its floor (2 allow ~22%).
    """
    return ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec(PREFILL, "L20", tp=4, count=15),),
        decode_pools=(PoolSpec(DECODE, "H20", tp=4, count=3),),
    )


#: Seconds from launching an instance to its first request when no per-GPU figure is given.
#: Ours, not measured: container start, loading ~141 GB of Llama-3.1-70B BF16 weights from
#: local NVMe at a few GB/s, and CUDA-graph capture add up to one to two minutes.
DEFAULT_STARTUP_S = 120.0


@dataclass(frozen=True)
class LifecycleSpec:
    """How instances come and go when a closed loop scales the cluster.

    Attributes
    ----------
    startup_s : tuple of (str, float)
        Startup delay per GPU type, ``(gpu_type, seconds)`` pairs: a new instance receives no
        traffic and reports ``ready = false`` for this long. GPU types not listed use
        ``default_startup_s``.
    default_startup_s : float
        Startup delay of any other GPU type (:data:`DEFAULT_STARTUP_S`, an assumption of ours).
    """

    startup_s: tuple[tuple[str, float], ...] = ()
    default_startup_s: float = DEFAULT_STARTUP_S

    def __post_init__(self) -> None:
        for gpu_type, seconds in self.startup_s:
            if gpu_type not in GPUS:
                raise ValueError(f"unknown gpu_type {gpu_type!r}; known: {sorted(GPUS)}")
            if seconds < 0:
                raise ValueError(f"startup_s of {gpu_type} must be >= 0, got {seconds}")
        if self.default_startup_s < 0:
            raise ValueError(f"default_startup_s must be >= 0, got {self.default_startup_s}")

    def startup_of(self, gpu_type: str) -> float:
        """Startup delay of a new instance on ``gpu_type``."""
        return dict(self.startup_s).get(gpu_type, self.default_startup_s)


@dataclass(frozen=True)
class EngineConfig:
    """The vLLM engine settings that shape scheduling (a run's ``meta.json`` ``engine_kwargs``).

    Attributes
    ----------
    max_num_seqs : int
        Most requests running (scheduled, prefilling or decoding) per data-parallel rank.
    max_num_batched_tokens : int
        Token budget of one step: decode tokens plus prefill chunk tokens.
    block_size : int
        Tokens per paged KV block.
    num_gpu_blocks : int or None
        KV blocks per rank as the engine reported them, its null block included; None derives
        them from memory.
    gpu_memory_utilization : float
        Share of GPU memory for weights plus KV when ``num_gpu_blocks`` is None.
    data_parallel_size : int
        Engine ranks per instance, each with its own scheduler, stepping in lockstep.
    enable_expert_parallel : bool
        Split a MoE model's experts over the ``tp * data_parallel_size`` GPUs.
    enable_prefix_caching : bool
        Freed KV blocks keep their hashes and can be hit again (:mod:`simulator.kv_blocks`).
    async_scheduling : bool
        The scheduler plans step N+1 while step N runs, so a request picked up between steps
        joins the step after the one already planned.
    scheduler_reserve_full_isl : bool
        Admit a waiting request only if its whole sequence so far (prompt plus generated
        tokens) fits in the free blocks, not just its first prefill chunk.

    The last three default to what vLLM 0.19 resolves them to when they are not set.
    """

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    block_size: int = 16
    num_gpu_blocks: int | None = None
    gpu_memory_utilization: float = 0.9
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    enable_prefix_caching: bool = True
    async_scheduling: bool = True
    scheduler_reserve_full_isl: bool = True

    def __post_init__(self) -> None:
        if min(self.max_num_seqs, self.max_num_batched_tokens, self.block_size) < 1:
            raise ValueError("max_num_seqs, max_num_batched_tokens and block_size must be >= 1")
        if self.data_parallel_size < 1 or not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError("data_parallel_size must be >= 1, gpu_memory_utilization in (0, 1]")
        if self.num_gpu_blocks is not None and self.num_gpu_blocks < 2:
            raise ValueError(
                f"num_gpu_blocks must be >= 2 (one is vLLM's null block), got {self.num_gpu_blocks}"
            )


@dataclass(frozen=True)
class ColocatedClusterSpec:
    """A colocated deployment: ``pool.count`` vLLM engines doing prefill and decode together.

    Attributes
    ----------
    model : str
        Key of :data:`simulator.hardware.MODELS`.
    pool : PoolSpec
        Role ``colocated``; ``tp`` GPUs per data-parallel rank.
    engine : EngineConfig
        Scheduler settings shared by every engine.
    efficiency : Efficiency or None
        Roofline efficiencies; None uses the single-GPU engine's on the pool's GPU
        (:func:`simulator.engine_calibration.engine_efficiency`).
    """

    model: str
    pool: PoolSpec
    engine: EngineConfig = EngineConfig()
    efficiency: Efficiency | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {sorted(MODELS)}")
        if self.pool.role != COLOCATED or self.pool.count < 1:
            raise ValueError("a colocated cluster needs a colocated pool of at least 1 instance")

    @property
    def gpus_per_instance(self) -> int:
        """GPUs of one engine: ``tp`` per rank times its data-parallel ranks."""
        return self.pool.tp * self.engine.data_parallel_size

    def describe(self) -> str:
        """One line for logs, e.g. ``Llama-3.1-8B: 1 colocated x 1 RTX-4090 (dp 1)``."""
        p = self.pool
        return (
            f"{self.model}: {p.count} colocated x {p.tp} {p.gpu_type} "
            f"(dp {self.engine.data_parallel_size})"
        )
