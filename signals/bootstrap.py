"""The moving-block bootstrap: confidence intervals that respect autocorrelated telemetry."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from statsmodels.tsa.stattools import acovf

from signals.paired import as_pairs, as_series, is_constant

#: :func:`block_bootstrap_ci` gives no interval when more replicates than this share are
#: undefined (NaN): the statistic is too fragile on this sample to bound.
MAX_UNDEFINED_REPLICATES = 0.05


def block_length(series: np.ndarray) -> int:
    """Data-driven block length for a moving-block bootstrap of a dependent series.

    Parameters
    ----------
    series : array_like
        The series whose dependence the blocks must keep, in time order.

    Returns
    -------
    int
        The Politis-White optimal block length, rounded up and kept within
        ``[1, ceil(min(3 sqrt(n), n / 3))]``; ``ceil(n ** (1/3))`` for a constant series,
        whose dependence is undefined, and 1 when the long-run variance estimate is not
        positive.

    Notes
    -----
    A block must be long enough to keep the dependence that drives the statistic's sampling
    error, and short enough to leave many distinct blocks. The rule chooses the length that
    minimises the mean squared error of the bootstrap variance of the series' mean, estimated
    from its autocovariances with a flat-top lag window cut where the correlogram becomes
    negligible; it grows like ``n ** (1/3)`` and with the autocorrelation (about 8 for an AR(1)
    with phi 0.5 at n = 400, 29 with phi 0.8, 1 for white noise). Which series to give it
    depends on the statistic: :func:`block_bootstrap_ci` gives it the influence series of
    Pearson's r, :func:`linearity` the residuals of the load line.

    References
    ----------
    Politis, D. N. & White, H. (2004), "Automatic block-length selection for the dependent
    bootstrap", Econometric Reviews 23(1); corrected by Patton, Politis & White (2009),
    Econometric Reviews 28(4).
    """
    series = as_series(series)
    n = series.size
    if is_constant(series):
        return math.ceil(n ** (1 / 3))
    runs = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_m = min(math.ceil(math.sqrt(n)) + runs, n - 1)
    autocovariance = acovf(series, nlag=max_m, fft=True)
    small = np.abs(autocovariance[1:] / autocovariance[0]) < 2 * math.sqrt(math.log10(n) / n)
    # m: the lag after which the correlogram stays negligible for ``runs`` lags.
    m = next((m for m in range(max_m - runs + 1) if small[m : m + runs].all()), max_m)
    bandwidth = min(2 * max(m, 1), max_m)
    lags = np.arange(-bandwidth, bandwidth + 1)
    flat_top = np.clip(2 * (1 - np.abs(lags) / bandwidth), 0, 1)
    gamma = autocovariance[np.abs(lags)]
    long_run = np.sum(flat_top * gamma)
    if not long_run > 0:
        return 1
    g = np.sum(flat_top * np.abs(lags) * gamma)
    optimal = (2 * g**2 / (4 / 3 * long_run**2)) ** (1 / 3) * n ** (1 / 3)
    return int(min(max(math.ceil(optimal), 1), math.ceil(min(3 * math.sqrt(n), n / 3))))


def block_bootstrap_ci(
    x: np.ndarray,
    y: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    block: int | None = None,
    resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> tuple[float, float]:
    """Moving-block bootstrap percentile interval of ``statistic(x, y)``.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval, in time order.
    statistic : callable
        ``statistic(x, y) -> float``; NaN where it is undefined on a resample.
    block : int, optional
        Block length in intervals; by default :func:`block_length` of the influence series of
        Pearson's r, ``z_x z_y - r (z_x^2 + z_y^2) / 2`` with ``z`` the standardised series
        (``ceil(n ** (1/3))`` for a constant signal). ``block=1`` is the iid (pairs)
        bootstrap.
    resamples : int
        Number of bootstrap replicates; at least ``2 / (1 - level)``, so that each tail of the
        interval rests on at least one replicate.
    level : float
        Coverage of the interval, in (0, 1).
    seed : int
        Seed of the generator drawing block starts; equal seeds draw equal resamples.
    batched : bool
        ``statistic`` works along the last axis: it is called once with every resample stacked
        as ``(resamples, n)`` arrays and returns one value per row, instead of once per
        resample (the same replicates, without a Python call each).

    Returns
    -------
    tuple of float
        ``(low, high)``, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
        replicates; ``(nan, nan)`` when more than :data:`MAX_UNDEFINED_REPLICATES` of them are
        NaN (e.g. a signal that is constant over most blocks). Fewer undefined replicates are
        left out.

    Raises
    ------
    ValueError
        For degenerate ``x`` or ``y`` (module docstring), ``block`` outside ``[1, n]``,
        ``level`` outside (0, 1) or too few ``resamples``.

    Notes
    -----
    Telemetry intervals are autocorrelated: load drifts slowly and queues carry over. Resampling
    single intervals as if independent understates the sampling error. The moving-block
    bootstrap draws ``ceil(n / block)`` blocks of consecutive intervals with uniformly random
    starts, concatenates them and cuts the result to ``n``: within a block the dependence is
    kept, so the replicates vary as much as the statistic would across repeated runs. Pairs are
    resampled together, so the load relation is kept.

    The default block keeps the dependence of the linearisation of r, whose mean r's error
    follows; neither series alone is the right yardstick. In 200 simulations of an AR(1) load
    (phi 0.9) with AR(1) noise (phi 0.8), n = 300, the 95% interval of r covered the true value
    in 88% of runs with this block, 84% with ``ceil(n ** (1/3))`` and 57% with the iid bootstrap:
    the percentile interval still undercovers under such strong dependence, but far less.

    References
    ----------
    Künsch, H. R. (1989), "The jackknife and the bootstrap for general stationary
    observations", Annals of Statistics 17(3). Lahiri, S. N. (2003), *Resampling Methods for
    Dependent Data*, Springer, ch. 2.
    """
    if batched:
        batch = statistic
    else:

        def batch(xs: np.ndarray, ys: np.ndarray) -> list[float]:
            return [statistic(x_row, y_row) for x_row, y_row in zip(xs, ys, strict=True)]

    return block_bootstrap_cis(
        x, y, {"statistic": batch}, block=block, resamples=resamples, level=level, seed=seed
    )["statistic"]


def block_bootstrap_cis(
    x: np.ndarray,
    y: np.ndarray,
    statistics: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]],
    *,
    block: int | None = None,
    resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """:func:`block_bootstrap_ci` of several statistics that work along the last axis, by
    name, all from one set of resamples: the intervals it gives each, with the resamples drawn
    and gathered once instead of once per statistic."""
    x, y = as_pairs(x, y)
    n = x.size
    block = pairs_block(x, y) if block is None else block
    if not 1 <= block <= n:
        raise ValueError(f"block must be in [1, {n}], got {block}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 2 / (1 - level):
        raise ValueError(f"resamples must be >= {math.ceil(2 / (1 - level))} at level {level}")
    indices = block_indices(n, block, resamples, seed)
    xs, ys = x[indices], y[indices]
    return {
        name: _percentile_interval(np.asarray(statistic(xs, ys), dtype=float), level)
        for name, statistic in statistics.items()
    }


def _percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The ``level`` percentile interval of the replicates (see :func:`block_bootstrap_ci`)."""
    defined = replicates[~np.isnan(replicates)]
    if defined.size < (1 - MAX_UNDEFINED_REPLICATES) * replicates.size:
        return math.nan, math.nan
    # A replicate can be infinite (a perfect fit's signal-to-noise ratio); interpolating
    # between two infinities is undefined, so they stand in as the largest float meanwhile.
    big = np.finfo(float).max
    bounds = np.quantile(np.clip(defined, -big, big), [(1 - level) / 2, (1 + level) / 2])
    low, high = (math.copysign(math.inf, b) if abs(b) == big else float(b) for b in bounds)
    return low, high


def block_indices(n: int, block: int, resamples: int, seed: int) -> np.ndarray:
    """Moving-block resamples of ``range(n)``: ``(resamples, n)`` indices."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(resamples, math.ceil(n / block)))
    return (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, :n]


def pairs_block(x: np.ndarray, y: np.ndarray) -> int:
    """Default block for pairs: :func:`block_length` of the influence series of Pearson's r."""
    if is_constant(y):
        return math.ceil(x.size ** (1 / 3))
    zx, zy = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    r = np.mean(zx * zy)
    return block_length(zx * zy - r / 2 * (zx**2 + zy**2))
