"""Controller decisions as step lines: what the pools had and what the controller wanted."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

ROLES = ("prefill", "decode")


def decisions_figure(
    decisions: pl.DataFrame,
    *,
    title: str = "Coordinated controller: current vs target instances (open loop)",
) -> go.Figure:
    """Current and target instance counts per role over time, as step lines.

    Parameters
    ----------
    decisions : pl.DataFrame
        The output of :func:`policies.replay_decisions` or the decisions of
        :func:`policies.run_backtest` (one or more services).
    title : str
        Says which of the two it shows.

    Returns
    -------
    go.Figure
        One panel per role; per service a solid step line of the current count and a dashed
        one of the target count. Prefill and decode steps line up because both pools move in
        the same decisions (paper §5.3.3, §5.4.4; compare Fig. 7a).
    """
    ordered = decisions.sort("service", "ts")
    figure = make_subplots(
        rows=len(ROLES),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"{role} instances" for role in ROLES],
    )
    services = ordered.partition_by("service", maintain_order=True, as_dict=True)
    for row, role in enumerate(ROLES, start=1):
        for (service,), group in services.items():
            times = group["ts"].to_list()
            for kind, dash in (("current", "solid"), ("target", "dash")):
                figure.add_trace(
                    go.Scatter(
                        x=times,
                        y=group[f"{kind}_{role}"].to_list(),
                        name=f"{service} {kind} {role}",
                        line={"shape": "hv", "dash": dash},
                    ),
                    row=row,
                    col=1,
                )
        figure.update_yaxes(title_text="instances", row=row, col=1)
    figure.update_xaxes(title_text="decision time (UTC)", row=len(ROLES), col=1)
    figure.update_layout(title=title)
    return figure
