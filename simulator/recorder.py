"""Raw event logs the instances write while the simulation runs.

Logging is append-only and cheap; turning the logs into per-interval telemetry happens once, at
the end, in :mod:`simulator.metrics`. Instances are identified by their global index.

Forward passes come two ways: one row per call (:meth:`Recorder.forward_pass`: prefill batches,
colocated steps), or a whole decode stride per call (:meth:`Recorder.decode_steps`: consecutive
steps of one batch, :mod:`simulator.decode`), kept unpriced so that skipping events does not
bring back Python work per step. :meth:`Recorder.passes` prices every stride's steps at once
and joins both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.perf_model import PerfModel
from simulator.stride_clock import StrideClock, strides_elapsed_s


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
        # One entry per decode stride: :meth:`decode_steps`'s arguments.
        self._strides: list[tuple[int, PerfModel, float, int, int, int]] = []
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
        # One row per preemption of a P/D decode instance's request.
        self.preemption_instance: list[int] = []
        self.preemption_at_s: list[float] = []

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
        perf: PerfModel,
        start_s: float,
        batch_size: int,
        kv_tokens: int,
        steps: int,
    ) -> None:
        """``steps`` consecutive decode steps over the same ``batch_size`` requests ran on
        ``instance`` from ``start_s``, each emitting one token per request; the first read
        ``kv_tokens`` of KV, each next one ``batch_size`` more.

        Stands for one :meth:`forward_pass` per step: step ``j`` starts at
        ``start_s + clock.elapsed_s(j)``, the clock being ``perf.stride_clock(batch_size,
        kv_tokens)`` (as the engine timed it), and costs
        ``perf.decode(batch_size, kv_tokens + j * batch_size)``, whose SM-active fraction is
        ``min(kernel_s / duration_s, 1)`` (``StepCost.sm_active_fraction``); :meth:`passes`
        computes them for every step at once.
        """
        self._strides.append((instance, perf, start_s, batch_size, kv_tokens, steps))

    def passes(self, pending: Sequence[tuple] = ()) -> PassLog:
        """Every forward pass logged so far, as arrays, followed by the ``pending`` strides
        (steps of strides still running, as :meth:`decode_steps` arguments), if any."""
        strides = [*self._strides, *pending] if pending else self._strides
        (instance, start_s, duration_s, kernel_s, batch) = _price_strides(strides)
        return PassLog(
            instance=np.concatenate([np.array(self.pass_instance, dtype=np.int64), instance]),
            start_s=np.concatenate([np.array(self.pass_start_s, dtype=float), start_s]),
            duration_s=np.concatenate([np.array(self.pass_duration_s, dtype=float), duration_s]),
            sm_active_fraction=np.concatenate(
                [
                    np.array(self.pass_sm_active_fraction, dtype=float),
                    np.minimum(kernel_s / duration_s, 1.0),
                ]
            ),
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

    def preempted(self, instance: int, at_s: float) -> None:
        """A request running on ``instance`` was preempted (its KV freed, to recompute)."""
        self.preemption_instance.append(instance)
        self.preemption_at_s.append(at_s)

    def kv_changed(self, instance: int, at_s: float, usage_ratio: float) -> None:
        """KV-cache usage of ``instance`` became ``usage_ratio`` of its capacity."""
        self.kv_instance.append(instance)
        self.kv_at_s.append(at_s)
        self.kv_usage_ratio.append(usage_ratio)


def _price_strides(strides: Sequence[tuple]) -> tuple[np.ndarray, ...]:
    """Instance, start, duration, roofline-kernel time and batch size of every step of
    ``strides`` (:meth:`Recorder.decode_steps` arguments), stride after stride.

    Steps are priced per perf model, all of its strides' steps in one
    :meth:`~simulator.perf_model.PerfModel.decode_steps` call.
    """
    if not strides:
        empty = np.empty(0)
        return np.empty(0, dtype=np.int64), empty, empty, empty, np.empty(0, dtype=np.int64)
    instance, perfs, start_s, batch, kv_tokens, steps = zip(*strides, strict=True)
    steps_a = np.array(steps, dtype=np.int64)
    batch_a = np.array(batch, dtype=np.int64)
    kv_a = np.array(kv_tokens, dtype=np.int64)
    first = np.cumsum(steps_a) - steps_a  # each stride's first step in the flat arrays
    step_index = np.arange(int(steps_a.sum()), dtype=np.int64) - np.repeat(first, steps_a)
    step_batch = np.repeat(batch_a, steps_a)
    step_kv = np.repeat(kv_a, steps_a) + step_index * step_batch
    models = {id(perf): perf for perf in perfs}
    if len(models) == 1:
        clocks = perfs[0].stride_clocks(batch_a, kv_a)
        cost = perfs[0].decode_steps(step_batch, step_kv)
        duration_s, kernel_s = cost.duration_s, cost.kernel_s
    else:
        clocks = np.empty((steps_a.size, len(StrideClock._fields)))
        duration_s, kernel_s = np.empty(step_kv.size), np.empty(step_kv.size)
        model_of = np.array([id(perf) for perf in perfs], dtype=np.int64)
        for key, perf in models.items():
            mine = model_of == key
            clocks[mine] = perf.stride_clocks(batch_a[mine], kv_a[mine])
            mine_steps = np.repeat(mine, steps_a)
            cost = perf.decode_steps(step_batch[mine_steps], step_kv[mine_steps])
            duration_s[mine_steps] = cost.duration_s
            kernel_s[mine_steps] = cost.kernel_s
    start = np.repeat(np.array(start_s, dtype=float), steps_a)
    start += strides_elapsed_s(clocks, steps_a, step_index)
    instance_a = np.repeat(np.array(instance, dtype=np.int64), steps_a)
    return instance_a, start, duration_s, kernel_s, step_batch
