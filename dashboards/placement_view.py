"""Where the scheduler put instances: counts per S2 big-pod and GPU type."""

from __future__ import annotations

from itertools import cycle

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots


def placement_figure(placement: pl.DataFrame) -> go.Figure:
    """Instances per S2 and GPU type, stacked, one panel per placement action.

    Parameters
    ----------
    placement : pl.DataFrame
        A placement plan with at least ``action``, ``s2``, ``gpu_type`` and ``instances``
        (the scheduler's plan has these among its columns).

    Returns
    -------
    go.Figure
        Per action (e.g. scale out, scale in) a stacked bar of summed ``instances`` per S2,
        one colour per GPU type; an empty plan gives an empty figure that says so.

    Notes
    -----
    Deployment Groups keep a service's P and D instances inside one S2 (paper §5.4.2), so the
    S2 is the unit of this summary.
    """
    summary = (
        placement.group_by("action", "s2", "gpu_type")
        .agg(pl.col("instances").sum())
        .sort("action", "gpu_type", "s2")
    )
    actions = summary["action"].unique(maintain_order=True).to_list()
    figure = make_subplots(rows=1, cols=max(1, len(actions)), subplot_titles=actions)
    gpu_types = summary["gpu_type"].unique(maintain_order=True).to_list()
    colours = dict(zip(gpu_types, cycle(qualitative.Plotly), strict=False))
    in_legend: set[str] = set()
    groups = summary.partition_by("action", "gpu_type", maintain_order=True, as_dict=True)
    for (action, gpu_type), bars in groups.items():
        figure.add_trace(
            go.Bar(
                x=bars["s2"].to_list(),
                y=bars["instances"].to_list(),
                name=gpu_type,
                legendgroup=gpu_type,
                showlegend=gpu_type not in in_legend,
                marker_color=colours[gpu_type],
            ),
            row=1,
            col=actions.index(action) + 1,
        )
        in_legend.add(gpu_type)
    figure.update_xaxes(title_text="S2 big-pod")
    if not actions:
        figure.add_annotation(text="no placement in this run", showarrow=False)
    figure.update_yaxes(title_text="instances")
    figure.update_layout(
        title="Instances placed (scale_out) and removed (scale_in) per S2 big-pod and GPU type, "
        "over every cycle",
        barmode="stack",
    )
    return figure
