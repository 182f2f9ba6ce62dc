"""Load and signal series as the signal study's statistics take them, checked once.

``x`` (offered load) and ``y`` (a candidate signal) must be one-dimensional, of equal length and
finite: non-finite values raise ``ValueError``, since dropping intervals from a time-ordered
series would silently shift lags and bootstrap blocks; drop or fill them before. Fewer than
:data:`MIN_INTERVALS` intervals raise ``ValueError``, and so does a constant load (no statistic
against load is defined). A constant signal is a property of the candidate, not an error.
"""

from __future__ import annotations

import numpy as np

#: Fewest paired intervals any statistic of the study is computed on.
MIN_INTERVALS = 10


def as_series(y: np.ndarray) -> np.ndarray:
    """``y`` as a float array, checked as the module docstring says."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"expected a one-dimensional series, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError(
            f"{int((~np.isfinite(y)).sum())} intervals are not finite; drop or fill them "
            "first (a time-ordered series is not thinned silently)"
        )
    if y.size < MIN_INTERVALS:
        raise ValueError(f"need at least {MIN_INTERVALS} intervals, got {y.size}")
    return y


def as_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Load and signal as float arrays of one length, checked as the module docstring says."""
    x, y = as_series(x), as_series(y)
    if x.shape != y.shape:
        raise ValueError(f"load and signal differ in length: {x.size} and {y.size}")
    if is_constant(x):
        raise ValueError("offered load is constant: no statistic against load is defined")
    return x, y


def is_constant(values: np.ndarray) -> bool:
    """Exactly constant (a floating-point test on the spread would call noise information)."""
    return bool(np.ptp(values) == 0)
