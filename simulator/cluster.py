"""What a simulated P/D cluster is made of: pools of identical instances and the serving knobs.

The embedded default (:func:`default_cluster`) is the paper's heterogeneous setup: prefill on
L20 (compute per dollar), decode on H20 (memory bandwidth per dollar), serving Llama-3.1-70B.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.hardware import GPUS, MODELS
from simulator.perf_model import Efficiency

PREFILL = "prefill"
DECODE = "decode"


@dataclass(frozen=True)
class PoolSpec:
    """``count`` identical instances of one role, each spanning ``tp`` GPUs of ``gpu_type``."""

    role: str
    gpu_type: str
    tp: int
    count: int

    def __post_init__(self) -> None:
        if self.role not in (PREFILL, DECODE):
            raise ValueError(f"pool role must be {PREFILL!r} or {DECODE!r}, got {self.role!r}")
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
