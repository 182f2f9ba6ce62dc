"""Each shown candidate signal against its role's offered load: the points the study's
statistics summarise, with the line it fitted, the noise around it and the knee it found.

R², SNR and a knee p-value are hard to judge as numbers; a scatter shows at a glance a line
(proportional control), a floor (a signal that stays busy at light load) or a cliff (a latency
that is flat until the pool saturates) (paper §5.3.2, Fig. 2).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboards.signal_candidates import finite, label, series_of, shown
from dashboards.wording import LOAD_NAMES, UNITS, number

#: Facets per row of the grid.
COLUMNS = 3
#: Height of one row of facets, in pixels.
ROW_HEIGHT = 320
#: Half-width of the band around the linear fit, in residual standard deviations: about 95% of
#: the intervals of a linear signal with Gaussian noise fall inside it.
BAND_SDS = 2

POINTS_COLOUR = "rgba(31, 119, 180, 0.5)"
FIT_COLOUR = "#d62728"
BAND_COLOUR = "rgba(214, 39, 40, 0.15)"
KNEE_COLOUR = "#2ca02c"


def signal_fit_figure(signal_series: pl.DataFrame, signal_study: pl.DataFrame) -> go.Figure:
    """One facet per shown candidate: its intervals against the offered load its role serves.

    Parameters
    ----------
    signal_series : pl.DataFrame
        The study's paired series: per interval (``ts``) and ``role``, each signal and every
        offered-load column, at the window the study judged signals over
        (:func:`signals.paired_series`). Rows with a ``gpu_type`` are left out.
    signal_study : pl.DataFrame
        The study's ranked candidates of one service (``signals.run_study``); the candidates
        drawn are :func:`dashboards.signal_candidates.shown`.

    Returns
    -------
    go.Figure
        A grid of :data:`COLUMNS` facets per row, titled "role signal (class, rank n)", in rank
        order. Each holds the intervals where the signal and the candidate's ``load_column``
        both have a value, the least-squares line through them, a band of ±:data:`BAND_SDS`
        times the study's ``residual_std`` around it, and, where the study found a knee, the
        two-segment fit and the knee. One legend entry per kind of trace.

    Notes
    -----
    The study table keeps the knee's load and the slopes either side but not the line's
    intercept; the least-squares intercept makes the residuals sum to zero, so it is the mean
    of ``y - slope_below * min(x - knee, 0) - slope_above * max(x - knee, 0)`` over the same
    points, which reproduces the study's two-segment fit. A statistic the study left undefined
    (NaN or null) leaves its trace out.
    """
    candidates = shown(signal_study).to_dicts()
    cells = max(1, len(candidates))  # an empty study still gets one (empty) facet
    rows = math.ceil(cells / COLUMNS)
    figure = make_subplots(
        rows=rows,
        cols=COLUMNS,
        specs=[  # no axes in the grid's cells past the last candidate
            [{} if row * COLUMNS + col < cells else None for col in range(COLUMNS)]
            for row in range(rows)
        ],
        subplot_titles=[f"{label(c)} ({c['class']}, rank {c['rank']})" for c in candidates],
        horizontal_spacing=0.08,
        vertical_spacing=0.3 / rows,
    )
    in_legend: set[str] = set()
    for index, candidate in enumerate(candidates):
        row, col = index // COLUMNS + 1, index % COLUMNS + 1
        load_column = candidate["load_column"]
        pairs = (
            series_of(signal_series, candidate["role"])
            .select(pl.col(load_column).alias("x"), pl.col(candidate["signal"]).alias("y"))
            .drop_nulls()
        )
        x, y = pairs["x"].to_numpy(), pairs["y"].to_numpy()
        for trace in _traces(x, y, candidate):
            trace.showlegend = trace.legendgroup not in in_legend
            in_legend.add(trace.legendgroup)
            figure.add_trace(trace, row=row, col=col)
        figure.update_xaxes(title_text=LOAD_NAMES[load_column], row=row, col=col)
        figure.update_yaxes(title_text=UNITS[candidate["signal"]], row=row, col=col)
    figure.update_layout(
        title="Candidate signals against their role's offered load: fit, noise band and knee",
        height=ROW_HEIGHT * rows + 140,
    )
    return figure


def _traces(x: np.ndarray, y: np.ndarray, candidate: dict) -> list[go.Scatter]:
    """The candidate's points, its line with the noise band, and its knee, as far as defined."""
    if x.size == 0:
        return []
    points = go.Scatter(
        x=x,
        y=y,
        mode="markers",
        name="intervals",
        legendgroup="intervals",
        legendrank=1,
        marker={"color": POINTS_COLOUR, "size": 5},
    )
    if np.unique(x).size < 2:
        return [points]
    slope, intercept = np.polyfit(x, y, 1)
    ends = np.array([x.min(), x.max()])
    fitted = intercept + slope * ends
    traces = [
        points,
        go.Scatter(
            x=ends,
            y=fitted,
            mode="lines",
            name="linear fit",
            legendgroup="linear fit",
            legendrank=2,
            line={"color": FIT_COLOUR},
            hovertext=f"R² {number(candidate['r_squared'])}, SNR {number(candidate['snr'])}",
        ),
    ]
    spread = candidate["residual_std"]
    if finite(spread):
        band = BAND_SDS * spread
        traces.insert(
            0,
            go.Scatter(
                x=[ends[0], ends[1], ends[1], ends[0], ends[0]],
                y=[*(fitted - band), fitted[1] + band, fitted[0] + band, fitted[0] - band],
                mode="lines",
                fill="toself",
                fillcolor=BAND_COLOUR,
                line={"width": 0},
                name=f"linear fit ± {BAND_SDS} residual sd",
                legendgroup="band",
                legendrank=3,
                hoverinfo="skip",
            ),
        )
    return traces + _knee(x, y, candidate)


def _knee(x: np.ndarray, y: np.ndarray, candidate: dict) -> list[go.Scatter]:
    """The study's two-segment fit and its knee; none where the study found no knee."""
    knee, below, above = (candidate[c] for c in ("knee_load", "slope_below", "slope_above"))
    if not (finite(knee) and finite(below) and finite(above)):
        return []
    level = float(
        np.mean(y - below * np.minimum(x - knee, 0.0) - above * np.maximum(x - knee, 0.0))
    )
    low, high = float(x.min()), float(x.max())
    kind = "cliff" if candidate["cliff"] else "knee"
    detail = (
        f"{kind} at {knee:,.0f}: slope x{number(candidate['slope_ratio'])} above it, "
        f"p = {number(candidate['knee_pvalue'])}"
    )
    return [
        go.Scatter(
            x=[low, knee, high],
            y=[level + below * (low - knee), level, level + above * (high - knee)],
            mode="lines",
            name="two-segment fit",
            legendgroup="two-segment fit",
            legendrank=4,
            line={"color": KNEE_COLOUR, "dash": "dash"},
            hovertext=detail,
        ),
        go.Scatter(
            x=[knee],
            y=[level],
            mode="markers",
            name="knee",
            legendgroup="knee",
            legendrank=5,
            marker={"color": KNEE_COLOUR, "size": 11, "symbol": "diamond"},
            hovertext=detail,
        ),
    ]
