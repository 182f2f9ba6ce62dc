"""Every candidate of the signal study against every statistic that classed it, as one grid.

The ranking says which signal won; the grid says why: a row that is green on correlation but
red on dynamic range is a signal that tracks load and still cannot drive scale-in (paper
§5.3.2). Colours put statistics of different scales on one scale (1 is what proportional
control needs); the text keeps the value itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import plotly.graph_objects as go
import polars as pl

from dashboards.signal_candidates import finite, label, ranked
from dashboards.wording import number
from signals.classify import MIN_SNR
from signals.statistics import STEADY_BAND

#: Height of one candidate's row, in pixels.
ROW_HEIGHT = 26


def _positive(value: float) -> float:
    """A correlation, R² or share: a scaling signal must rise with load, so below 0 scores 0."""
    return min(max(value, 0.0), 1.0)


def _near_one(ratio: float) -> float:
    """A ratio that is 1 when right and off by the same factor either way."""
    return min(ratio, 1.0 / ratio) if ratio > 0 else 0.0


def _above_chance(auc: float) -> float:
    """An ROC AUC: 0 at chance (0.5) or worse, 1 when it separates perfectly."""
    return _positive(2.0 * (auc - 0.5))


#: The grid's columns: heading, the study's column, and how its value maps to a 0-1 score.
#: The signal-to-noise ratio scores 0.5 at the classifier's minimum (:data:`MIN_SNR`); the
#: steady-window CV scores 0.5 when the signal wobbles as much as load may in a steady window
#: (:data:`~signals.statistics.STEADY_BAND`); the dynamic range is the signal's over the
#: load's, 1 for a signal proportional to load.
STATISTICS: tuple[tuple[str, str, Callable[[float], float]], ...] = (
    ("Pearson r", "pearson", _positive),
    ("Spearman rho", "spearman", _positive),
    ("R²", "r_squared", _positive),
    ("dynamic range / load's", "relative_range", _near_one),
    ("SNR", "snr", lambda snr: 1.0 - MIN_SNR / (snr + MIN_SNR)),
    ("steady CV", "steady_cv", lambda cv: 1.0 / (1.0 + cv / STEADY_BAND)),
    ("lag correlation", "lag_correlation", _positive),
    ("breach AUC", "breach_auc", _above_chance),
)


def signal_statistics_figure(signal_study: pl.DataFrame) -> go.Figure:
    """A heatmap of candidates (rows, in rank order) by statistic (columns).

    Parameters
    ----------
    signal_study : pl.DataFrame
        The study's ranked candidates of one service (``signals.run_study``), with
        ``load_dynamic_range`` and the columns of :data:`STATISTICS`.

    Returns
    -------
    go.Figure
        One heatmap trace. Rows are labelled "rank. role signal (class)" (with the GPU type for
        a candidate of one type), best first; each cell's colour is the score of
        :data:`STATISTICS` (0 to 1, 1 best for proportional control) and its text the value,
        with the lag in intervals beside the lag correlation (positive: the signal leads).
        An undefined statistic (null or NaN) leaves the cell blank and reads ``n/a``.
    """
    candidates = (
        ranked(signal_study)
        .with_columns(relative_range=pl.col("dynamic_range") / pl.col("load_dynamic_range"))
        .to_dicts()
    )
    scores = [
        [_score(candidate[column], score) for _, column, score in STATISTICS]
        for candidate in candidates
    ]
    texts = [[_text(candidate, column) for _, column, _ in STATISTICS] for candidate in candidates]
    figure = go.Figure(
        go.Heatmap(
            z=scores,
            x=[heading for heading, _, _ in STATISTICS],
            y=[f"{c['rank']}. {label(c)} ({c['class']})" for c in candidates],
            text=texts,
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{text} (score %{z:.2f})<extra></extra>",
            zmin=0.0,
            zmax=1.0,
            colorscale="RdYlGn",
            colorbar={"title": {"text": "score (1 best)"}},
            name="score",
        )
    )
    figure.update_xaxes(title_text="statistic (text: its value)", side="top")
    figure.update_yaxes(title_text="candidate, by rank", autorange="reversed")
    figure.update_layout(
        title="Signal study: every candidate's statistics against offered load",
        height=ROW_HEIGHT * len(candidates) + 220,
    )
    return figure


def _score(value: float | None, score: Callable[[float], float]) -> float | None:
    """The cell's colour; None (a blank cell) where the statistic is undefined."""
    return None if value is None or math.isnan(value) else score(value)


def _text(candidate: dict, column: str) -> str:
    """The cell's text: the value, and beside the lag correlation the lag it was found at."""
    text = number(candidate[column])
    if column == "lag_correlation" and finite(candidate["lag"]):
        text += f", lag {candidate['lag']:+.0f}"
    return text
