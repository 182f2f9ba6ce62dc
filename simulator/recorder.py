"""Raw event logs the instances write while the simulation runs.

Logging is append-only and cheap; turning the logs into per-interval telemetry happens once, at
the end, in :mod:`simulator.metrics`. Instances are identified by their global index.

Forward passes come two ways: one row per call (:meth:`Recorder.forward_pass`: prefill batches,
colocated steps), or a whole decode stride per call (:meth:`Recorder.decode_steps`: consecutive
steps of one batch, :mod:`simulator.decode`), kept as the arrays that priced it so that skipping
events does not bring back Python work per step. :meth:`Recorder.passes` joins both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PassLog:
    """Every logged forward pass, one element per pass.

    Rows logged one at a time come first, then each decode stride's steps; each instance's
    passes stay in the order they ran, so sums over an instance's passes add up in that order.
    """

    instance: np.ndarray  # int64
    start_s: np.ndarray
    duration_s: np.ndarray
    sm_active_fraction: np.ndarray
    batch_size: np.ndarray  # int64
    decode_tokens: np.ndarray  # int64


class Recorder:
    """Append-only logs of kernel activity, token counts, latencies and gauge changes."""

    def __init__(self) -> None:
        # One row per forward pass logged alone (prefill batch or colocated step).
        self.pass_instance: list[int] = []
        self.pass_start_s: list[float] = []
        self.pass_duration_s: list[float] = []
        self.pass_sm_active_fraction: list[float] = []
        self.pass_batch_size: list[int] = []
        self.pass_decode_tokens: list[int] = []
        # One entry per decode stride: (instance, step starts, durations, roofline-kernel
        # times, batch size); the arrays hold one element per step.
        self._strides: list[tuple[int, Sequence[float], Sequence[float], Sequence[float], int]] = []
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

    def decode_steps(
        self,
        instance: int,
        start_s: np.ndarray | list[float],
        duration_s: np.ndarray | list[float],
        kernel_s: np.ndarray | list[float],
        batch_size: int,
    ) -> None:
        """Consecutive decode steps over the same ``batch_size`` requests ran on ``instance``,
        one per element of the sequences, each emitting one token per request.

        Stands for one :meth:`forward_pass` per step, whose SM-active fraction is
        ``min(kernel_s / duration_s, 1)`` (``StepCost.sm_active_fraction`` of
        :mod:`simulator.perf_model`), computed for every step at once by :meth:`passes`. The
        sequences are kept, not copied: the caller must not modify them afterwards.
        """
        self._strides.append((instance, start_s, duration_s, kernel_s, batch_size))

    def passes(self, pending: Sequence[tuple] = ()) -> PassLog:
        """Every forward pass logged so far, as arrays, followed by the ``pending`` strides
        (steps of strides still running, as :meth:`decode_steps` arguments), if any."""
        strides = [*self._strides, *pending] if pending else self._strides
        steps = np.array([len(stride[1]) for stride in strides], dtype=np.int64)

        def per_stride(field: int) -> np.ndarray:
            return np.repeat(np.array([s[field] for s in strides], dtype=np.int64), steps)

        def column(alone: list, field: int) -> tuple[np.ndarray, np.ndarray]:
            """Rows logged alone, and the strides' steps."""
            steps_field = [np.empty(0), *(s[field] for s in strides)]
            return np.array(alone, dtype=float), np.concatenate(steps_field, dtype=float)

        batch = per_stride(4)
        alone_duration, step_duration = column(self.pass_duration_s, 2)
        alone_sm_active, step_kernel = column(self.pass_sm_active_fraction, 3)
        step_sm_active = np.minimum(step_kernel / step_duration, 1.0)
        return PassLog(
            instance=np.concatenate([np.array(self.pass_instance, dtype=np.int64), per_stride(0)]),
            start_s=np.concatenate(column(self.pass_start_s, 1)),
            duration_s=np.concatenate([alone_duration, step_duration]),
            sm_active_fraction=np.concatenate([alone_sm_active, step_sm_active]),
            batch_size=np.concatenate([np.array(self.pass_batch_size, dtype=np.int64), batch]),
            decode_tokens=np.concatenate(
                [np.array(self.pass_decode_tokens, dtype=np.int64), batch]
            ),
        )

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
