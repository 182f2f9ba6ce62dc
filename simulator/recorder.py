"""Raw event logs the instances write while the simulation runs.

Logging is append-only and cheap; turning the logs into per-interval telemetry happens once, at
the end, in :mod:`simulator.metrics`. Instances are identified by their global index.
"""

from __future__ import annotations


class Recorder:
    """Append-only logs of kernel activity, token counts, latencies and gauge changes."""

    def __init__(self) -> None:
        # One row per forward pass (prefill batch or decode step).
        self.pass_instance: list[int] = []
        self.pass_start_s: list[float] = []
        self.pass_duration_s: list[float] = []
        self.pass_sm_active_fraction: list[float] = []
        self.pass_batch_size: list[int] = []
        self.pass_decode_tokens: list[int] = []
        # One row per finished prefill batch.
        self.prefill_instance: list[int] = []
        self.prefill_end_s: list[float] = []
        self.prefill_total_tokens: list[int] = []
        self.prefill_missed_tokens: list[int] = []
        # One row per first token.
        self.ttft_instance: list[int] = []
        self.ttft_at_s: list[float] = []
        self.ttft_s: list[float] = []
        # Gauges: a row per change of value.
        self.queue_instance: list[int] = []
        self.queue_at_s: list[float] = []
        self.queue_depth: list[int] = []
        self.kv_instance: list[int] = []
        self.kv_at_s: list[float] = []
        self.kv_usage_ratio: list[float] = []

    def forward_pass(
        self,
        instance: int,
        start_s: float,
        duration_s: float,
        sm_active_fraction: float,
        batch_size: int,
        decode_tokens: int,
    ) -> None:
        """A pass over ``batch_size`` requests ran on ``instance``; the SMs held warps resident
        for ``sm_active_fraction`` of it, and it emitted ``decode_tokens`` output tokens beyond
        each request's first (a prefill batch emits none, a decode step one per request)."""
        self.pass_instance.append(instance)
        self.pass_start_s.append(start_s)
        self.pass_duration_s.append(duration_s)
        self.pass_sm_active_fraction.append(sm_active_fraction)
        self.pass_batch_size.append(batch_size)
        self.pass_decode_tokens.append(decode_tokens)

    def prefill_done(self, instance: int, end_s: float, total_tokens: int, missed: int) -> None:
        """A pass finished prefilling ``total_tokens`` prompt tokens, ``missed`` of them
        computed (the rest hit the prefix cache)."""
        self.prefill_instance.append(instance)
        self.prefill_end_s.append(end_s)
        self.prefill_total_tokens.append(total_tokens)
        self.prefill_missed_tokens.append(missed)

    def first_token(self, instance: int, at_s: float, ttft_s: float) -> None:
        """A request got its first token on ``instance`` (prefill or colocated)."""
        self.ttft_instance.append(instance)
        self.ttft_at_s.append(at_s)
        self.ttft_s.append(ttft_s)

    def queue_changed(self, instance: int, at_s: float, depth: int) -> None:
        """Requests waiting on ``instance`` (not yet in a running batch) became ``depth``."""
        self.queue_instance.append(instance)
        self.queue_at_s.append(at_s)
        self.queue_depth.append(depth)

    def kv_changed(self, instance: int, at_s: float, usage_ratio: float) -> None:
        """KV-cache usage of ``instance`` became ``usage_ratio`` of its capacity."""
        self.kv_instance.append(instance)
        self.kv_at_s.append(at_s)
        self.kv_usage_ratio.append(usage_ratio)
