"""Signal scores as bars: how linear and how scale-in responsive each candidate signal is."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots


def signal_scores_figure(signal_scores: pl.DataFrame) -> go.Figure:
    """Bar charts of |Pearson r| and scale-in response per role and signal.

    Parameters
    ----------
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.

    Returns
    -------
    go.Figure
        Top: |Pearson r| with offered load; bottom: scale-in response; one bar series per
        (service, role), signals on the x axis. Undefined scores (null) leave a gap.

    Notes
    -----
    A usable proportional-control signal scores high on both (paper §5.3.2): decode GPU
    utilisation can correlate with load and still barely fall when load falls.
    """
    scores = signal_scores.sort("service", "role", "signal")
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        subplot_titles=(
            "|Pearson r| with offered load",
            "Scale-in response (high - low load mean) / high",
        ),
    )
    roles = scores.partition_by("service", "role", maintain_order=True, as_dict=True)
    for index, ((service, role), group) in enumerate(roles.items()):
        signals = group["signal"].to_list()
        common = {"name": f"{service} {role}", "legendgroup": f"{service} {role}"}
        figure.add_trace(
            go.Bar(x=signals, y=group["pearson_r"].abs().to_list(), offsetgroup=index, **common),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Bar(
                x=signals,
                y=group["scale_in_response"].to_list(),
                offsetgroup=index,
                showlegend=False,
                **common,
            ),
            row=2,
            col=1,
        )
    figure.update_yaxes(title_text="|r|", range=[0, 1.05], row=1, col=1)
    figure.update_yaxes(title_text="share", row=2, col=1)
    figure.update_xaxes(title_text="signal", row=2, col=1)
    figure.update_layout(title="Candidate signals scored against offered load", barmode="group")
    return figure
