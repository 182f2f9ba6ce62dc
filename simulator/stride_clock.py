"""Closed-form timing of a decode stride: consecutive steps of an unchanging batch.

The P/D decode instances run each stretch of steps over an unchanged batch as one event
(:mod:`simulator.decode`); they need only when its steps end, which a :class:`StrideClock`
(from :meth:`simulator.perf_model.PerfModel.stride_clock`) gives in O(1) per stride.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class StrideClock(NamedTuple):
    """Closed-form timing of a decode stride (:meth:`PerfModel.stride_clock`).

    Step ``j``'s kernel time is ``kernel0 + kernel1 * j``: the projections and FFN cost the same
    every step and the attention grows with the KV, which grows by the batch each step; every
    step adds ``fixed_s`` (all-reduce and overhead). A tuple, so that a list of clocks converts
    to an array in one call (:func:`strides_elapsed_s`).
    """

    kernel0: float
    kernel1: float
    fixed_s: float

    def elapsed_s(self, steps: int) -> float:
        """Time the first ``steps`` steps take; :func:`strides_elapsed_s` is its array twin."""
        return (
            steps * self.fixed_s + steps * self.kernel0 + self.kernel1 * (steps * (steps - 1) // 2)
        )

    def first_bound(self, start_s: float, at_s: float, lo: int, hi: int) -> int:
        """Smallest ``k`` in ``[lo, hi)`` whose boundary ``start_s + elapsed_s(k)`` is at or
        after ``at_s``, else ``hi``: ``bisect_left`` over the stride's boundaries.

        The first guess solves the elapsed time's quadratic for ``at_s``, then a walk corrects
        it (by a step at most: rounding).
        """
        if hi <= lo:
            return hi
        elapsed_s = at_s - start_s
        linear_s = self.fixed_s + self.kernel0 - self.kernel1 / 2
        if self.kernel1 > 0 and elapsed_s > 0:
            guess = (
                2 * elapsed_s / (linear_s + math.sqrt(linear_s**2 + 2 * self.kernel1 * elapsed_s))
            )
        else:
            guess = elapsed_s / (self.fixed_s + self.kernel0)
        k = min(max(lo, math.ceil(guess)), hi)
        while k > lo and start_s + self.elapsed_s(k - 1) >= at_s:
            k -= 1
        while k < hi and start_s + self.elapsed_s(k) < at_s:
            k += 1
        return k


def strides_elapsed_s(clocks: np.ndarray, counts: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """:meth:`StrideClock.elapsed_s` elementwise, bit for bit, for many strides at once.

    Row ``i`` of ``clocks`` is a clock (its fields in order); ``counts[i]`` consecutive
    elements of ``steps`` (the steps to time) belong to it, stride after stride.
    """
    kernel0, kernel1, fixed_s = clocks.T
    # Whole numbers below 2**53 in float64: every product and half below is exact, as the
    # scalar's integer arithmetic is.
    k = np.asarray(steps, dtype=float)
    elapsed_s = k * np.repeat(fixed_s, counts)
    elapsed_s += k * np.repeat(kernel0, counts)
    elapsed_s += np.repeat(kernel1, counts) * (k * (k - 1) * 0.5)
    return elapsed_s
