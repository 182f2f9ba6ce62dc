"""The top-ranked signals of each role and the load they are judged against, over the study's
span.

A scatter loses time: whether a signal follows load through the day, lags it on a ramp or
drifts apart from it (a stock such as KV-cache usage) shows only over time. Each line is
divided by its own peak so that signals of any unit share one axis with the load. A panel per
role, because each pool scales on its own signal against its own load: the best signals
overall may all be one role's.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dashboards.signal_candidates import label, series_of, whole_roles
from dashboards.wording import LOAD_NAMES

#: How many of each role's best-ranked whole-role candidates are drawn.
TOP_PER_ROLE = 2

#: One colour per offered-load column, the same on every run.
LOAD_COLOURS = {"request_rate_rps": "#8c564b", "input_tps": "#7f7f7f", "output_tps": "#111111"}


def signal_series_figure(signal_series: pl.DataFrame, signal_study: pl.DataFrame) -> go.Figure:
    """Each role's :data:`TOP_PER_ROLE` best-ranked signals and its offered load over time.

    Parameters
    ----------
    signal_series : pl.DataFrame
        The study's paired series: per interval (``ts``) and ``role``, each signal and every
        offered-load column, at the window the study judged signals over
        (:func:`signals.paired_series`). Rows with a ``gpu_type`` are left out.
    signal_study : pl.DataFrame
        The study's ranked candidates of one service (``signals.run_study``).

    Returns
    -------
    go.Figure
        One panel per role, the role of the best-ranked candidate first, sharing the time
        axis. Each holds a line per signal, named "role signal (rank n)", and a dotted line of
        the offered load the role is judged against, named by the load; every line is its
        value over its own peak across the span. A line whose peak is not above 0 (or that has
        no value) stays blank; an interval without a value is a gap.
    """
    top = (
        whole_roles(signal_study)
        .filter(pl.int_range(pl.len()).over("role", order_by="rank") < TOP_PER_ROLE)
        .to_dicts()
    )
    roles = list(dict.fromkeys(candidate["role"] for candidate in top))
    figure = make_subplots(
        rows=max(1, len(roles)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[f"{role}: best-ranked signals and offered load" for role in roles],
    )
    colours = iter(qualitative.Plotly)
    for row, role in enumerate(roles, start=1):
        rows = series_of(signal_series, role)
        times = rows["ts"].to_list()
        mine = [candidate for candidate in top if candidate["role"] == role]
        for candidate in mine:
            figure.add_trace(
                go.Scatter(
                    x=times,
                    y=_over_peak(rows[candidate["signal"]]),
                    mode="lines",
                    name=f"{label(candidate)} (rank {candidate['rank']})",
                    line={"color": next(colours), "width": 1.5},
                ),
                row=row,
                col=1,
            )
        load_column = mine[0]["load_column"]
        figure.add_trace(
            go.Scatter(
                x=times,
                y=_over_peak(rows[load_column]),
                mode="lines",
                name=LOAD_NAMES[load_column],
                line={"color": LOAD_COLOURS[load_column], "dash": "dot", "width": 2},
            ),
            row=row,
            col=1,
        )
        figure.update_yaxes(title_text="share of its own peak", range=[0, 1.05], row=row, col=1)
    figure.update_xaxes(title_text="time (UTC)", row=max(1, len(roles)), col=1)
    figure.update_layout(
        title="Best-ranked signals of each role against its offered load, each over its peak"
    )
    return figure


def _over_peak(values: pl.Series) -> list[float | None]:
    """``values`` over their maximum; all null when the maximum is missing or not above 0."""
    peak = values.max()
    if peak is None or not peak > 0:
        return [None] * values.len()
    return (values / peak).to_list()
