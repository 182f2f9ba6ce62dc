"""Statistics of one candidate signal against its role's offered load, with block-bootstrap CIs.

Each function takes a signal series ``y`` and the offered load ``x`` it is judged against,
aligned per interval and in time order (e.g. one (service, role) of :func:`signals.role_series`
joined to ``service_load``), and measures one property the paper asks of a scaling signal
(§5.3.2): that it track load linearly, with little noise, fall when load falls, not lag load,
warn of SLO breaches, and mean the same on every GPU type. :func:`describe` gathers them into
one row per candidate. Nothing here knows which signal ought to win.

Load and signal are checked by :mod:`signals.paired` (finite, equal length, at least
:data:`~signals.paired.MIN_INTERVALS` intervals, a load that varies); a constant signal is a
property of the candidate (it carries no information about load), so every statistic that
needs variation in ``y`` is NaN, as documented per function. Intervals come from
:mod:`signals.bootstrap`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.tools.sm_exceptions import InterpolationWarning
from statsmodels.tsa.stattools import acf, adfuller, kpss

from signals.bootstrap import block_bootstrap_cis, block_indices, block_length, pairs_block
from signals.paired import MIN_INTERVALS, as_pairs, as_series, is_constant

#: Share of intervals at each end of the load range compared by :func:`dynamic_range`, the
#: same quintiles as ``score_signals``.
LOAD_FIFTH = 0.2

#: Knee candidates for :func:`linearity`: these quantiles of load, so that each segment keeps
#: at least a tenth of the intervals.
KNEE_QUANTILES = np.linspace(0.1, 0.9, 81)

#: A two-segment fit is a knee when its bootstrap p-value against one line is below this.
KNEE_LEVEL = 0.05

#: A knee whose slope above is at least this many times the slope below (in magnitude) is a
#: cliff: the signal barely moves until load reaches the knee, then moves fast.
CLIFF_SLOPE_RATIO = 3.0

#: Residual sums of squares below this share of the total are rounding noise (an exact fit).
EXACT_FIT = 1e-12

#: Steady windows of :func:`signal_to_noise`: this many consecutive intervals ...
STEADY_WINDOW = 5
#: ... whose load stays within this relative band around the window's median load. Arrival
#: noise alone moves offered load by more than 5% between 15 s or 60 s intervals: on the Azure
#: 2023 conversation hour at 60 s, 4 windows of 56 were steady within 5%, 17 within 10%.
STEADY_BAND = 0.10


@dataclass(frozen=True)
class Correlations:
    """Pearson's r and Spearman's rho of signal with load (NaN for a constant signal)."""

    pearson: float
    spearman: float


@dataclass(frozen=True)
class Linearity:
    """How well one straight line describes the signal against load; see :func:`linearity`."""

    r_squared: float
    reset_statistic: float
    reset_pvalue: float
    knee_pvalue: float
    knee_load: float
    slope_below: float
    slope_above: float
    slope_ratio: float
    r_squared_gain: float
    cliff: bool


@dataclass(frozen=True)
class SignalToNoise:
    """Noise of the signal around its load relation; see :func:`signal_to_noise`."""

    slope: float
    snr: float
    residual_std: float
    steady_cv: float
    steady_windows: int


@dataclass(frozen=True)
class LeadLag:
    """Lag (intervals, positive = signal leads load) of the strongest cross-correlation."""

    lag: float
    lag_correlation: float


@dataclass(frozen=True)
class BreachAUC:
    """Out-of-sample ROC AUC of next-interval SLO breach; ``breach_reason`` says why NaN."""

    breach_auc: float
    breach_reason: str


@dataclass(frozen=True)
class Diagnostics:
    """Lag-1 autocorrelation and stationarity p-values of one series; see :func:`diagnostics`."""

    lag1_autocorrelation: float
    adf_pvalue: float
    kpss_pvalue: float


@dataclass(frozen=True)
class Generality:
    """Per-GPU-type slopes against capacity-normalised load; see :func:`generality`."""

    slopes: dict[str, float]
    slope_ratio: float
    slope_cv: float


@dataclass(frozen=True)
class Description:
    """Every statistic of one candidate against its load; :meth:`as_row` flattens it."""

    n_intervals: int
    block: int
    correlations: Correlations
    linearity: Linearity
    dynamic_range: float
    signal_to_noise: SignalToNoise
    lead_lag: LeadLag
    breach: BreachAUC
    diagnostics: Diagnostics
    intervals: dict[str, tuple[float, float]]

    def as_row(self) -> dict[str, float | int | bool | str]:
        """One flat row: every statistic by its field name, each headline statistic followed by
        ``<name>_low`` and ``<name>_high``, its block-bootstrap interval."""
        row: dict[str, float | int | bool | str] = {}
        for field in fields(self):
            if field.name == "intervals":
                continue
            value = getattr(self, field.name)
            parts = asdict(value) if is_dataclass(value) else {field.name: value}
            for name, statistic in parts.items():
                row[name] = statistic
                if name in self.intervals:
                    row[f"{name}_low"], row[f"{name}_high"] = self.intervals[name]
        return row


def correlations(x: np.ndarray, y: np.ndarray) -> Correlations:
    """Pearson and Spearman correlation of the signal with offered load.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval.

    Returns
    -------
    Correlations
        ``pearson``: linear association, what a proportional controller (replicas = signal /
        target) relies on; ``spearman``: the correlation of ranks (ties averaged), monotone
        association. Both NaN for a constant signal.

    Notes
    -----
    A Spearman well above Pearson flags a monotone but curved relation, such as a latency that
    stays flat and then climbs: usable as an alarm, poor as a proportional signal.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2, Fig. 2.
    """
    x, y = as_pairs(x, y)
    return Correlations(_pearson(x, y), _spearman(x, y))


def linearity(x: np.ndarray, y: np.ndarray, *, resamples: int = 500, seed: int = 0) -> Linearity:
    """Whether one straight line describes the signal against load, and where it breaks.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval, in time order.
    resamples : int
        Bootstrap replicates behind both p-values (the smallest p-value is
        ``1 / (resamples + 1)``).
    seed : int
        Seed of the block bootstrap.

    Returns
    -------
    Linearity
        - ``r_squared``: R² of the least-squares line ``y ~ a + b x``;
        - ``reset_statistic``: Ramsey's RESET F statistic of that line against one with the
          squared and cubed fitted values added (statsmodels' ``linear_reset`` with
          ``power=3, use_f=True``); large means curvature the line misses;
        - ``reset_pvalue``: its block-bootstrap p-value (see Notes);
        - ``knee_pvalue``: block-bootstrap p-value of the best continuous two-segment line
          against one line;
        - ``knee_load``: the load at that breakpoint, when ``knee_pvalue < KNEE_LEVEL``;
        - ``slope_below``, ``slope_above``: the slopes of the two segments, in signal units
          per load unit;
        - ``slope_ratio``: ``|slope_above| / |slope_below|`` (inf when the segment below is
          exactly flat);
        - ``r_squared_gain``: R² of the two segments minus R² of one line;
        - ``cliff``: a knee with ``slope_ratio >= CLIFF_SLOPE_RATIO``.

        The knee fields are NaN (``cliff`` False) without a knee. For a constant signal every
        float is NaN. For an exact linear fit both p-values are 1: nothing is left for a
        non-linear term to explain.

    Raises
    ------
    ValueError
        For degenerate ``x`` or ``y`` (module docstring), or ``resamples < 1``.

    Notes
    -----
    Proportional scaling assumes the signal per instance is the same at every load: a linear
    relation. A cliff, as latencies show when a pool saturates, gives no warning below the knee
    and overreacts above it.

    The knee comes from a segmented (hinge) regression ``y = a + b x + c max(x - k, 0)``,
    profiled over the breakpoint ``k`` on the :data:`KNEE_QUANTILES` of load rather than
    iterated from a starting value; its statistic is the relative drop in residual sum of
    squares at the best ``k`` (a sup-F). The breakpoint does not exist under the null, so
    the F distribution does not apply (Davies' problem).

    Both p-values come from a residual block bootstrap under the null of one line: replicates
    ``y* = a + b x + u*``, with ``u*`` the line's residuals resampled in moving blocks of
    :func:`block_length` of those residuals, are refitted and the p-value is the share of
    replicate statistics at least the observed one, ``(1 + #) / (1 + resamples)``. Classical
    RESET p-values assume independent errors; on telemetry they are far too small. With a
    random-walk load, a linear signal and AR(1) noise (phi 0.8, n = 300) the classical test
    rejected at 5% in 64% of simulations, with a Newey-West covariance in 25 to 35%, with this
    bootstrap in 10% (15% at n = 60): still above 5%, but far less. Residual sums below
    :data:`EXACT_FIT` of the total count as zero, so rounding never makes a knee.

    References
    ----------
    Ramsey, J. B. (1969), "Tests for specification errors in classical linear least-squares
    regression analysis", JRSS B 31(2). Muggeo, V. M. R. (2003), "Estimating regression models
    with unknown break-points", Statistics in Medicine 22(19). Davies, R. B. (1987),
    "Hypothesis testing when a nuisance parameter is present only under the alternative",
    Biometrika 74(1). Davidson, R. & MacKinnon, J. G. (1999), "The size distortion of
    bootstrap tests", Econometric Theory 15(3). HeteroScale (arXiv 2508.19559) §5.3.2:
    latencies are cliff-like, throughput linear.
    """
    x, y = as_pairs(x, y)
    n = x.size
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if is_constant(y):
        return Linearity(*[math.nan] * 9, cliff=False)
    z = (x - x.mean()) / x.std()
    line = np.column_stack([np.ones(n), z])
    knees = np.unique(np.quantile(z, KNEE_QUANTILES))
    # Every alternative is the line plus extra columns, so (Frisch-Waugh-Lovell) its residual
    # sum of squares is the line's minus the squared projection of the line's residuals on
    # the extra columns made orthogonal to the line: one matrix product for every knee and
    # every replicate, instead of a least-squares fit per knee per replicate.
    hinges = _orthogonal_to(line, np.maximum(z[:, None] - knees[None, :], 0.0))
    hinge_norms = np.sum(hinges**2, axis=0)
    usable = hinge_norms > EXACT_FIT * n  # a knee below every load is the line itself
    # With one regressor, powers of the fitted values span the powers of the regressor.
    cubic = np.linalg.qr(_orthogonal_to(line, np.column_stack([z**2, z**3])))[0]

    total = float(np.sum((y - y.mean()) ** 2))
    floor = EXACT_FIT * total

    def curvature(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RESET and knee statistics (relative RSS drops) and the best knee, per column."""
        residuals = _orthogonal_to(line, values)
        rss = np.sum(residuals**2, axis=0)
        rss_line = np.maximum(rss, floor)
        drops = np.where(
            usable[:, None],
            (hinges.T @ residuals) ** 2 / np.where(usable, hinge_norms, 1)[:, None],
            0,
        )
        rss_hinges = np.maximum(rss[None, :] - drops, floor)
        best = np.argmin(rss_hinges, axis=0)
        knee = (rss_line - rss_hinges.min(axis=0)) / rss_hinges.min(axis=0)
        rss_cubic = np.maximum(rss - np.sum((cubic.T @ residuals) ** 2, axis=0), floor)
        reset = (rss_line - rss_cubic) / rss_line
        return reset, knee, best

    coefficients = np.linalg.lstsq(line, y, rcond=None)[0]
    residuals = y - line @ coefficients
    rss_line = max(float(residuals @ residuals), floor)
    r_squared = 1 - float(residuals @ residuals) / total
    (reset_drop,), (knee_drop,), (best,) = curvature(y[:, None])
    reset_statistic = float(reset_drop / (1 - reset_drop) * (n - 4) / 2)
    if rss_line == floor:
        return Linearity(r_squared, reset_statistic, 1.0, 1.0, *[math.nan] * 5, cliff=False)

    indices = block_indices(n, block_length(residuals), resamples, seed)
    replicates = (line @ coefficients)[:, None] + residuals[indices].T
    reset_null, knee_null, _ = curvature(replicates)
    reset_pvalue = float((1 + np.sum(reset_null >= reset_drop)) / (1 + resamples))
    knee_pvalue = float((1 + np.sum(knee_null >= knee_drop)) / (1 + resamples))
    if knee_pvalue >= KNEE_LEVEL:
        return Linearity(
            r_squared, reset_statistic, reset_pvalue, knee_pvalue, *[math.nan] * 5, cliff=False
        )
    segments = np.column_stack([line, np.maximum(z - knees[best], 0.0)])
    hinge = np.linalg.lstsq(segments, y, rcond=None)[0]
    slope_below, slope_above = hinge[1] / x.std(), (hinge[1] + hinge[2]) / x.std()
    ratio = abs(slope_above / slope_below) if slope_below != 0 else math.inf
    return Linearity(
        r_squared=r_squared,
        reset_statistic=reset_statistic,
        reset_pvalue=reset_pvalue,
        knee_pvalue=knee_pvalue,
        knee_load=float(knees[best] * x.std() + x.mean()),
        slope_below=float(slope_below),
        slope_above=float(slope_above),
        slope_ratio=float(ratio),
        r_squared_gain=float(knee_drop / (1 + knee_drop) * rss_line / total),
        cliff=bool(ratio >= CLIFF_SLOPE_RATIO),
    )


def dynamic_range(x: np.ndarray, y: np.ndarray) -> float:
    """Mean signal at the lowest fifth of load over the mean at the highest fifth.

    Parameters
    ----------
    x, y : array_like
        Offered load and a non-negative signal, per interval.

    Returns
    -------
    float
        ``mean(y | lowest k loads) / mean(y | highest k loads)`` with
        ``k = max(1, floor(n * LOAD_FIFTH))``, intervals ordered by load and ties by time (the
        quintiles of ``score_signals``). NaN when the high-load mean is 0.

    Notes
    -----
    Scale-in needs a signal that falls when load falls. A value near 1 means the signal reads
    about the same at light and at heavy load, so a target on it cannot tell an idle pool from
    a busy one and never releases instances; a proportional signal gives the ratio of the low
    to the high loads themselves. 1 minus this ratio is ``score_signals``'
    ``scale_in_response``.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2: decode GPU utilisation stays high at light load.
    """
    x, y = as_pairs(x, y)
    return _dynamic_range(x, y)


def signal_to_noise(
    x: np.ndarray, y: np.ndarray, *, window: int = STEADY_WINDOW, band: float = STEADY_BAND
) -> SignalToNoise:
    """Noise of the signal around its load relation, and within steady load.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval, in time order.
    window : int
        Length in intervals of the windows tested for steady load.
    band : float
        A window is steady when every load in it is within ``band`` (relative) of the window's
        median load, and that median is positive.

    Returns
    -------
    SignalToNoise
        - ``slope``: of the least-squares line, in signal units per unit of load: the relation
          a per-instance target rests on, which a drift check compares day by day
          (:mod:`signals.drift`); NaN for a constant signal;
        - ``snr``: the swing of the least-squares line across the central 90% of load,
          ``|slope| * (q95(x) - q05(x))``, over ``residual_std``: how many noise standard
          deviations separate the signal at light and at heavy load (inf for an exact fit);
        - ``residual_std``: standard deviation of the residuals around that line
          (``n - 2`` degrees of freedom), in the signal's units;
        - ``steady_cv``: the median over steady windows of the signal's coefficient of
          variation (standard deviation over mean, ``ddof=1``) within the window; windows
          whose signal mean is 0 are skipped;
        - ``steady_windows``: how many (overlapping) windows were steady.

        ``snr`` is NaN for a constant signal, ``steady_cv`` NaN without a steady window.

    Notes
    -----
    A controller compares the signal with a target; noise makes it act on fluctuations that are
    not load. ``snr`` is a fitted range over a residual spread, not explained over residual
    variance, so that it reads in the terms of a threshold: how many noise standard deviations
    apart the signal sits at light and at heavy load. For a given load distribution it carries
    the information of R², ``snr = sqrt(R² / (1 - R²) * (n - 2) / n) * (q95 - q05) / sd(x)``
    (``sd`` with ``ddof=0``); curvature the line misses counts as noise, as a proportional
    controller sees it. ``steady_cv`` needs no model: when load hardly moves, all the signal's
    movement is noise.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2: a good signal has a high signal-to-noise ratio;
    TTFT is noisier than TBT.
    """
    x, y = as_pairs(x, y)
    if not 2 <= window <= x.size:
        raise ValueError(f"window must be in [2, {x.size}], got {window}")
    if not band > 0:
        raise ValueError(f"band must be > 0, got {band}")
    loads = np.lib.stride_tricks.sliding_window_view(x, window)
    signals = np.lib.stride_tricks.sliding_window_view(y, window)
    median = np.median(loads, axis=1)
    steady = (median > 0) & np.all(np.abs(loads - median[:, None]) <= band * median[:, None], 1)
    means = signals[steady].mean(axis=1)
    cvs = signals[steady].std(axis=1, ddof=1)[means != 0] / means[means != 0]
    _, residual_std = _line(x, y)
    return SignalToNoise(
        slope=_slope(x, y),
        snr=_snr(x, y),
        residual_std=float(residual_std),
        steady_cv=float(np.median(cvs)) if cvs.size else math.nan,
        steady_windows=int(steady.sum()),
    )


def lead_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> LeadLag:
    """Lag at which the signal's changes correlate most with the load's changes.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval, in time order.
    max_lag : int
        Largest shift tried, in intervals, each way; at least :data:`MIN_INTERVALS` pairs of
        changes must overlap at that shift.

    Returns
    -------
    LeadLag
        ``lag``: the shift ``k`` in ``[-max_lag, max_lag]`` maximising
        ``|corr(dy[t], dx[t + k])|`` over the first differences ``d``; positive means the
        signal moves ``k`` intervals before load (it leads), negative that it follows.
        Ties go to the smallest ``|k|``. ``lag_correlation``: that correlation, signed.
        Both NaN for a constant signal.

    Notes
    -----
    A signal that follows load by several intervals makes a controller late on every ramp; one
    that leads (queues build before throughput shows) buys reaction time. The series are
    differenced first: load wanders slowly, and the cross-correlation of two trending levels is
    high at every shift and locates nothing.

    References
    ----------
    Box, G. E. P. & Jenkins, G. M., *Time Series Analysis: Forecasting and Control*, on
    identifying transfer-function models by cross-correlation of differenced (prewhitened)
    series. HeteroScale (arXiv 2508.19559) §5.3.2.
    """
    x, y = as_pairs(x, y)
    changes = x.size - 1
    if not 0 <= max_lag <= changes - MIN_INTERVALS:
        raise ValueError(f"max_lag must be in [0, {changes - MIN_INTERVALS}], got {max_lag}")
    dx, dy = np.diff(x), np.diff(y)
    lags = sorted(range(-max_lag, max_lag + 1), key=abs)
    shifted = [
        _pearson(dy[: changes - k], dx[k:]) if k >= 0 else _pearson(dy[-k:], dx[: changes + k])
        for k in lags
    ]
    if np.all(np.isnan(shifted)):
        return LeadLag(math.nan, math.nan)
    best = int(np.nanargmax(np.abs(shifted)))
    return LeadLag(float(lags[best]), shifted[best])


def breach_auc(y: np.ndarray, breach: np.ndarray, *, splits: int = 5) -> BreachAUC:
    """How well the signal now predicts an SLO breach in the next interval.

    Parameters
    ----------
    y : array_like
        Signal per interval, in time order.
    breach : array_like of bool
        Whether the SLO was breached in each interval, aligned with ``y``.
    splits : int
        Folds of the time-series split.

    Returns
    -------
    BreachAUC
        ``breach_auc``: the mean over folds of the ROC AUC of a logistic regression of
        ``breach[t + 1]`` on ``y[t]``, fitted on the intervals before each fold and scored on
        the fold. ``breach_reason`` is empty, or says why the AUC is NaN: a constant signal,
        or a fold whose training or test part holds a single class.

    Raises
    ------
    ValueError
        For a degenerate ``y`` (module docstring), or a ``breach`` of another length or not
        boolean.

    Notes
    -----
    Feedback scaling (the paper's negative-feedback rules on latency) acts when the SLO is in
    danger; a signal whose level now ranks the coming intervals by breach risk can act before
    the breach. With one feature, the AUC is that of the signal's rank ordering, and the model
    only learns from the past whether a higher signal means more risk or less; the time-series
    split (every fold trained on earlier intervals only) keeps that choice honest. 0.5 is
    chance.

    References
    ----------
    Hanley, J. A. & McNeil, B. J. (1982), "The meaning and use of the area under a ROC curve",
    Radiology 143(1). HeteroScale (arXiv 2508.19559) §5.3.2, and §5.3.4 for the latency tiers.
    """
    y = as_series(y)
    breach = np.asarray(breach)
    if breach.shape != y.shape or breach.dtype != bool:
        raise ValueError(
            f"breach must be boolean of shape {y.shape}, got {breach.dtype} {breach.shape}"
        )
    if is_constant(y):
        return BreachAUC(math.nan, "constant signal")
    features, target = y[:-1, None], breach[1:]
    aucs = []
    for fold, (train, test) in enumerate(TimeSeriesSplit(n_splits=splits).split(features)):
        for part, rows in (("training", train), ("test", test)):
            if np.unique(target[rows]).size < 2:
                return BreachAUC(math.nan, f"fold {fold}: {part} intervals hold one class")
        model = make_pipeline(StandardScaler(), LogisticRegression())
        model.fit(features[train], target[train])
        aucs.append(roc_auc_score(target[test], model.decision_function(features[test])))
    return BreachAUC(float(np.mean(aucs)), "")


def diagnostics(y: np.ndarray) -> Diagnostics:
    """Autocorrelation and stationarity of one series (a signal, or the load).

    Parameters
    ----------
    y : array_like
        Values per interval, in time order.

    Returns
    -------
    Diagnostics
        - ``lag1_autocorrelation``: the sample autocorrelation at lag 1;
        - ``adf_pvalue``: augmented Dickey-Fuller test (constant, lags by AIC, chosen by
          :func:`_adf_lag` as statsmodels' ``autolag="AIC"`` chooses them); the null is a
          unit root, so a small p-value says the series is stationary;
        - ``kpss_pvalue``: KPSS test (level stationarity, automatic lags); the null is
          stationarity, so a small p-value says it is not. statsmodels interpolates it in a
          table and clips it to [0.01, 0.10]; the warning it raises at the clips is
          suppressed, read 0.01 as "at most" and 0.10 as "at least".

        All NaN for a constant series.

    Notes
    -----
    These say how far to trust the other statistics. A high lag-1 autocorrelation means fewer
    independent intervals than rows, hence the block bootstrap. A non-stationary signal (a unit
    root by ADF, rejected by KPSS) can correlate with a trending load by accident: two random
    walks correlate spuriously, so a high correlation should then be confirmed on differences
    (:func:`lead_lag`). ADF and KPSS have opposite nulls and are read together.

    References
    ----------
    Dickey, D. A. & Fuller, W. A. (1979), JASA 74(366). Kwiatkowski, D., Phillips, P. C. B.,
    Schmidt, P. & Shin, Y. (1992), J. Econometrics 54. Granger, C. W. J. & Newbold, P.
    (1974), "Spurious regressions in econometrics", J. Econometrics 2(2).
    """
    y = as_series(y)
    if is_constant(y):
        return Diagnostics(math.nan, math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterpolationWarning)
        stationarity = kpss(y, regression="c", nlags="auto", result_object=True)
    unit_root = adfuller(y, maxlag=_adf_lag(y), regression="c", autolag=None, result_object=True)
    return Diagnostics(
        lag1_autocorrelation=float(acf(y, nlags=1, fft=True)[1]),
        adf_pvalue=float(unit_root.pvalue),
        kpss_pvalue=float(stationarity.pvalue),
    )


def _adf_lag(y: np.ndarray) -> int:
    """The lag ``adfuller(y, regression="c", autolag="AIC")`` selects, from one QR factorisation.

    statsmodels fits an OLS for every lag from 0 to Schwert's ``ceil(12 (n / 100) ** (1/4))``
    (40 fits at n = 10,080, over a second per series), all on the sample the longest lag leaves,
    each design the previous one plus a column: [constant, level, lagged differences 1..p].
    The regressions nest, so the Householder QR of the widest design gives every narrower
    one's residual sum of squares (the response's part outside the first ``k`` columns of Q)
    and with it the AIC statsmodels compares, ``-2 llf + 2 k``, ties to the shorter lag.
    statsmodels then reruns the chosen lag on its own longer sample, as :func:`diagnostics`
    does by passing this lag as ``maxlag`` with ``autolag=None``. A design of deficient rank
    (a ramp, whose differences are constant) is left to statsmodels' search, which counts
    each fit's rank; numpy's rank test is the stricter, so every design it passes has full
    rank in each of statsmodels' fits too.
    """
    n = y.size
    maxlag = min(math.ceil(12.0 * (n / 100.0) ** 0.25), n // 2 - 2)
    changes = np.diff(y)
    rows = changes.size - maxlag
    lagged = [changes[maxlag - k : changes.size - k] for k in range(1, maxlag + 1)]
    design = np.column_stack([np.ones(rows), y[maxlag:-1], *lagged])
    response = changes[maxlag:]
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return int(adfuller(y, regression="c", autolag="AIC", result_object=True).lags)
    q = np.linalg.qr(design)[0]
    projection = q.T @ response
    rss_full = float(np.sum((response - q @ projection) ** 2))
    # The RSS of the first k columns: the full design's plus what columns k and after explain.
    explained_after = np.append(np.cumsum((projection**2)[::-1])[::-1], 0.0)
    rss = rss_full + explained_after[2:]
    columns = np.arange(2, maxlag + 3)
    aic = rows * np.log(rss) + rows * (1 + np.log(2 * np.pi / rows)) + 2 * columns
    return int(np.argmin(aic))


def generality(
    load_by_type: Mapping[str, np.ndarray],
    signal_by_type: Mapping[str, np.ndarray],
    capacity_by_type: Mapping[str, float],
) -> Generality:
    """Whether the per-instance relation of signal to load is the same on every GPU type.

    Parameters
    ----------
    load_by_type : mapping of str to array_like
        Per GPU type, the load served per instance (pooled over instances and intervals).
    signal_by_type : mapping of str to array_like
        Per GPU type, the signal per instance, aligned with the load.
    capacity_by_type : mapping of str to float
        Per GPU type, the load one instance can serve (same units as the load), > 0.

    Returns
    -------
    Generality
        - ``slopes``: per type, the least-squares slope of the signal against
          ``load / capacity``, the instance's load as a share of its capacity;
        - ``slope_ratio``: the largest over the smallest slope; NaN when the slopes differ in
          sign or one is 0;
        - ``slope_cv``: the slopes' standard deviation (over the types, ``ddof=0``) over the
          magnitude of their mean; NaN when the mean is 0.

    Raises
    ------
    ValueError
        With fewer than two types, keys that differ between the mappings, a capacity that is
        not positive, or degenerate series (module docstring).

    Notes
    -----
    On a heterogeneous fleet one target value should mean the same on every GPU type. Once
    load is expressed as a share of capacity, a signal that generalises has the same slope on
    all types (ratio 1, CV 0), so one target fits all pools. A signal in the load's own units
    (a throughput) should be divided by the same capacity by the caller; it then generalises
    exactly when its share of capacity does.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2; its pools mix GPU types (e.g. prefill on L20,
    decode on H20).
    """
    types = sorted(load_by_type)
    if len(types) < 2:
        raise ValueError(f"generality needs at least two GPU types, got {types}")
    if set(signal_by_type) != set(types) or set(capacity_by_type) != set(types):
        raise ValueError("load_by_type, signal_by_type and capacity_by_type must share keys")
    slopes = {}
    for gpu in types:
        if not capacity_by_type[gpu] > 0:
            raise ValueError(f"capacity of {gpu!r} must be > 0, got {capacity_by_type[gpu]}")
        share, signal = as_pairs(
            np.asarray(load_by_type[gpu], dtype=float) / capacity_by_type[gpu],
            signal_by_type[gpu],
        )
        slopes[gpu], _ = _line(share, signal)
    values = np.array(list(slopes.values()))
    same_sign = np.all(values > 0) or np.all(values < 0)
    ratio = float(np.max(np.abs(values)) / np.min(np.abs(values))) if same_sign else math.nan
    mean = abs(values.mean())
    return Generality(slopes, ratio, float(values.std() / mean) if mean > 0 else math.nan)


def describe(
    x: np.ndarray,
    y: np.ndarray,
    *,
    breach: np.ndarray | None = None,
    max_lag: int = 5,
    block: int | None = None,
    resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> Description:
    """Every statistic of one candidate signal against its load, ready to be a table row.

    Parameters
    ----------
    x, y : array_like
        Offered load and signal, per interval, in time order.
    breach : array_like of bool, optional
        SLO breach per interval, for :func:`breach_auc`; without it the AUC is NaN.
    max_lag : int
        For :func:`lead_lag`.
    block, resamples, level, seed
        For :func:`signals.bootstrap.block_bootstrap_ci`, whose default block is chosen once
        for all intervals; every interval is drawn from the same resamples. ``resamples`` and
        ``seed`` also drive the p-values of :func:`linearity`.

    Returns
    -------
    Description
        The results of :func:`correlations`, :func:`linearity`, :func:`dynamic_range`,
        :func:`signal_to_noise`, :func:`lead_lag`, :func:`breach_auc` and :func:`diagnostics`
        (of the signal), with an interval for each of :data:`HEADLINE` (Pearson, Spearman,
        R², dynamic range, SNR, slope). ``as_row()`` flattens it.

    Notes
    -----
    Every statistic follows the degenerate-input rules of the module docstring; ``describe``
    raises where they raise and carries NaN where they give NaN.
    """
    x, y = as_pairs(x, y)
    block = pairs_block(x, y) if block is None else block
    intervals = block_bootstrap_cis(
        x, y, HEADLINE, block=block, resamples=resamples, level=level, seed=seed
    )
    return Description(
        n_intervals=x.size,
        block=block,
        correlations=correlations(x, y),
        linearity=linearity(x, y, resamples=resamples, seed=seed),
        dynamic_range=dynamic_range(x, y),
        signal_to_noise=signal_to_noise(x, y),
        lead_lag=lead_lag(x, y, max_lag),
        breach=BreachAUC(math.nan, "no breach series") if breach is None else breach_auc(y, breach),
        diagnostics=diagnostics(y),
        intervals=intervals,
    )


# The headline statistics work along the last axis: on one series they give a float, on a
# (replicates, intervals) stack of bootstrap resamples an array, so the bootstrap computes all
# its replicates at once (:func:`describe`).


def _varies(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Neither series is exactly constant (:func:`signals.paired.is_constant`), per row."""
    return (np.ptp(x, axis=-1) != 0) & (np.ptp(y, axis=-1) != 0)


def _scalar(values: np.ndarray) -> float | np.ndarray:
    return float(values) if np.ndim(values) == 0 else values


def _pearson(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    dx, dy = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = _dot(dx, dy) / np.sqrt(_dot(dx, dx) * _dot(dy, dy))
    return _scalar(np.where(_varies(x, y), np.clip(r, -1.0, 1.0), np.nan))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of products along the last axis, without the product array ``np.sum(a * b)``
    allocates (a third of the time on 500 resamples), and without BLAS, whose threads cost
    more than they save on 500 short rows."""
    return np.einsum("...i,...i->...", a, b)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    return _pearson(_ranks(x), _ranks(y))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 along the last axis, ties given the mean of their ranks: ``rankdata``'s
    ``"average"``, from one unstable sort per row, since a tie group's mean rank does not depend
    on the order within it (on 500 resamples of 10,080 intervals, 0.26 CPU-s to rankdata's 0.45)."""
    order = np.argsort(values, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.roll(starts, -1, axis=-1)
    position = np.arange(values.shape[-1])
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
    last = np.minimum.accumulate(np.where(ends, position, position[-1])[..., ::-1], axis=-1)
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, (first + last[..., ::-1]) / 2 + 1, axis=-1)
    return ranks


def _r_squared(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    return _pearson(x, y) ** 2


def _dynamic_range(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    n = x.shape[-1]
    k = max(1, math.floor(n * LOAD_FIFTH))
    cuts = np.partition(x, [k - 1, n - k], axis=-1)
    low = _mean_beyond(x, y, cuts[..., k - 1 : k], k, lowest=True)
    high = _mean_beyond(x, y, cuts[..., n - k : n - k + 1], k, lowest=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.where(high != 0, low / high, np.nan))


def _mean_beyond(
    x: np.ndarray, y: np.ndarray, cut: np.ndarray, k: int, *, lowest: bool
) -> np.ndarray:
    """Mean ``y`` over the ``k`` lowest (or highest) ``x`` along the last axis, ties by time,
    given ``cut``, the k-th lowest (highest) ``x``: what a stable sort by ``x`` would put first
    (last), found by partitioning instead of sorting each row (half the time). Loads
    beyond the cut are in; of those at the cut, the earliest (latest) fill the rest."""
    beyond, tied = (x < cut if lowest else x > cut), x == cut
    room = k - np.count_nonzero(beyond, axis=-1, keepdims=True)
    order = tied if lowest else tied[..., ::-1]
    taken = np.cumsum(order, axis=-1, dtype=np.int32) <= room
    chosen = beyond | (tied & (taken if lowest else taken[..., ::-1]))
    return np.sum(np.where(chosen, y, 0.0), axis=-1) / k


def _line(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and residual standard deviation (``n - 2`` degrees of freedom) of ``y ~ a + b x``,
    along the last axis."""
    dx, dy = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = _dot(dx, dy) / _dot(dx, dx)
    residuals = dy - slope[..., None] * dx
    return slope, np.sqrt(_dot(residuals, residuals) / (x.shape[-1] - 2))


def _slope(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    return _scalar(np.where(_varies(x, y), _line(x, y)[0], np.nan))


def _snr(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    slope, residual_std = _line(x, y)
    low, high = np.quantile(x, [0.05, 0.95], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(residual_std > 0, np.abs(slope) * (high - low) / residual_std, np.inf)
    return _scalar(np.where(_varies(x, y), snr, np.nan))


def _orthogonal_to(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each column of ``values`` less its least-squares fit on ``design``: its residuals."""
    return values - design @ np.linalg.lstsq(design, values, rcond=None)[0]


#: The statistics :func:`describe` puts a block-bootstrap interval on, by row name (each works
#: along the last axis, so the bootstrap passes them every replicate at once).
HEADLINE: dict[str, Callable[[np.ndarray, np.ndarray], float | np.ndarray]] = {
    "pearson": _pearson,
    "spearman": _spearman,
    "r_squared": _r_squared,
    "dynamic_range": _dynamic_range,
    "snr": _snr,
    "slope": _slope,
}
