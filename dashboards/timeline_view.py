"""The evaluation days over time: offered load, and the instances each policy paid for per role.

Side by side with the oracle (the limit) and static_peak (the fixed deployment), the chosen
policy's pools should follow the load's diurnal shape closely and never fall far behind it.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboards.policy_groups import policy_colours

ROLES = ("prefill", "decode")


def timeline_figure(fleet_timeline: pl.DataFrame, policies: Sequence[str]) -> go.Figure:
    """Offered requests/s, then mean prefill and decode instances per bin, per policy.

    Parameters
    ----------
    fleet_timeline : pl.DataFrame
        :data:`policies.fleet.TIMELINE_SCHEMA`: per policy per bin ``offered_rps``,
        ``prefill_instances``, ``decode_instances``.
    policies : sequence of str
        The policies to draw, in legend order.

    Returns
    -------
    go.Figure
        Three panels sharing the time axis: offered load (the same for every policy, drawn
        once, from the first policy's rows), prefill instances, decode instances; one legend
        entry per policy covering both role panels.

    Raises
    ------
    ValueError
        If a policy has no rows in the timeline.
    """
    missing = sorted(set(policies) - set(fleet_timeline["policy"]))
    if missing:
        raise ValueError(f"no timeline rows for {missing}")
    colours = policy_colours(fleet_timeline["policy"])
    by_policy = fleet_timeline.sort("ts").partition_by("policy", as_dict=True)
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        subplot_titles=(
            "Offered load",
            *(f"{role.capitalize()} instances paid (mean per bin)" for role in ROLES),
        ),
    )
    load = by_policy[(policies[0],)]
    figure.add_trace(
        go.Scatter(
            x=load["ts"].to_list(),
            y=load["offered_rps"].to_list(),
            name="offered load",
            line={"color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    for policy in policies:
        rows = by_policy[(policy,)]
        for index, role in enumerate(ROLES):
            figure.add_trace(
                go.Scatter(
                    x=rows["ts"].to_list(),
                    y=rows[f"{role}_instances"].to_list(),
                    name=policy,
                    legendgroup=policy,
                    showlegend=index == 0,
                    line={"color": colours[policy], "shape": "hv"},
                ),
                row=index + 2,
                col=1,
            )
    figure.update_yaxes(title_text="requests/s", row=1, col=1)
    for index in range(len(ROLES)):
        figure.update_yaxes(title_text="instances", row=index + 2, col=1)
    figure.update_xaxes(title_text="time (UTC)", row=3, col=1)
    figure.update_layout(title="Evaluation days: offered load and instances per role")
    return figure
