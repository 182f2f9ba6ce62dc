"""The chosen policy's count changes as step lines: what each role ran before a decision and what
the decision asked the scheduler to place."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

ROLES = ("prefill", "decode")
#: One look per kind on both panels: the count before a decision, and the one it asked for.
STYLES = {"current": {"color": "#1f77b4"}, "next": {"color": "#d62728", "dash": "dash"}}


def decisions_figure(decisions: pl.DataFrame) -> go.Figure:
    """Current and next instance counts per role at every count change, as step lines.

    Parameters
    ----------
    decisions : pl.DataFrame
        :data:`policies.loop.ROLE_TARGETS_SCHEMA` (``scaling_decisions``): ``ts``,
        ``current_*``, ``next_*`` per role and the ``reason``, shown on hover.

    Returns
    -------
    go.Figure
        One panel per role, a solid step line of the current count and a dashed one of the
        next; prefill and decode steps line up because the policy moves both pools in the same
        decisions (paper §5.3.3, §5.4.4; compare Fig. 7a). No change gives an empty figure
        that says so.
    """
    ordered = decisions.sort("ts")
    figure = make_subplots(
        rows=len(ROLES),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"{role.capitalize()} instances" for role in ROLES],
    )
    times, reasons = ordered["ts"].to_list(), ordered["reason"].to_list()
    for row, role in enumerate(ROLES, start=1):
        for kind, style in STYLES.items():
            figure.add_trace(
                go.Scatter(
                    x=times,
                    y=ordered[f"{kind}_{role}"].to_list(),
                    name=f"{kind} {role}",
                    hovertext=reasons,
                    line={"shape": "hv", **style},
                ),
                row=row,
                col=1,
            )
        figure.update_yaxes(title_text="instances", row=row, col=1)
    if ordered.is_empty():
        figure.add_annotation(text="no count changes in this run", showarrow=False)
    figure.update_xaxes(title_text="decision time (UTC)", row=len(ROLES), col=1)
    figure.update_layout(title="Chosen policy: instances before and after each count change")
    return figure
