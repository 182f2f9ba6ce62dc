"""Each evaluation day on its own: a saving or an SLO that holds on the week as a whole can
still fail on one day, and the bootstrap CIs are only as wide as the days differ."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboards.policy_groups import policy_colours


def per_day_figure(fleet_per_day: pl.DataFrame, *, slo_attainment_target: float) -> go.Figure:
    """GPU-hours per policy per day as grouped bars, and SLO attainment per policy per day.

    Parameters
    ----------
    fleet_per_day : pl.DataFrame
        ``policy``, ``day`` (from 1), ``gpu_hours``, ``slo_attainment`` (0-1).
    slo_attainment_target : float
        The SLO's attainment target (0-1), drawn as a dashed line on the lower panel.

    Returns
    -------
    go.Figure
        Top: a bar per policy per day; bottom: SLO attainment (%) per policy per day, markers
        joined by lines; one legend entry per policy covering both panels.
    """
    per_day = fleet_per_day.sort("day", maintain_order=True)
    colours = policy_colours(per_day["policy"])
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        subplot_titles=("GPU-hours per day", "SLO attainment per day"),
    )
    for (policy,), days in per_day.partition_by(
        "policy", maintain_order=True, as_dict=True
    ).items():
        style = {"name": policy, "legendgroup": policy, "marker_color": colours[policy]}
        figure.add_trace(
            go.Bar(x=days["day"].to_list(), y=days["gpu_hours"].to_list(), **style), row=1, col=1
        )
        figure.add_trace(
            go.Scatter(
                x=days["day"].to_list(),
                y=(100 * days["slo_attainment"]).to_list(),
                mode="lines+markers",
                showlegend=False,
                **style,
            ),
            row=2,
            col=1,
        )
    days = per_day["day"].unique().sort()
    target = 100 * slo_attainment_target
    figure.add_trace(
        go.Scatter(
            x=[days.min(), days.max()],
            y=[target, target],
            name=f"SLO attainment target ({target:g}%)",
            mode="lines",
            line={"dash": "dash", "color": "green"},
        ),
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="GPU-hours", row=1, col=1)
    figure.update_yaxes(title_text="% of intervals within SLO", row=2, col=1)
    figure.update_xaxes(title_text="evaluation day", tickvals=days.to_list(), row=2, col=1)
    figure.update_layout(title="Evaluation days one by one", barmode="group")
    return figure
