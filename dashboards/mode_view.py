"""How far the backtest's fast mode agrees with the request-level simulator, per policy.

The fleet backtest runs every policy in fast (fluid) mode over whole weeks; the request-level
simulator, which prices queues, KV transfers and placement, replays one span of it. The gaps
say how much of a saving or an attainment on the other pages the fast mode can be trusted for.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

#: The gaps of ``mode_agreement``'s request rows: column, legend name, panel (1: relative,
#: 2: percentage points), the scale to the panel's unit.
GAPS = (
    ("gpu_hours_gap", "GPU-hours", 1, 100.0),
    ("avg_gpu_util_gap", "GPU utilisation", 2, 100.0),
    ("ttft_attainment_gap", "TTFT attainment", 2, 100.0),
    ("tbt_attainment_gap", "TBT attainment", 2, 100.0),
)


def mode_agreement_figure(mode_agreement: pl.DataFrame) -> go.Figure:
    """Request level minus fast mode per policy, as grouped bars.

    Parameters
    ----------
    mode_agreement : pl.DataFrame
        :func:`policies.modes.compare_modes`: a ``fast`` and a ``request`` row per policy,
        the request rows carrying the ``*_gap`` columns of :data:`GAPS`.

    Returns
    -------
    go.Figure
        Left: the GPU-hours gap in percent of fast mode's; right: the utilisation and SLO
        attainment gaps in percentage points; policies on the x axes, a bar colour per gap.
    """
    request = mode_agreement.filter(pl.col("mode") == "request").sort("policy")
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.35, 0.65],
        subplot_titles=("GPU-hours", "GPU utilisation and SLO attainment"),
    )
    policies = request["policy"].to_list()
    for column, name, panel, scale in GAPS:
        figure.add_trace(
            go.Bar(x=policies, y=(scale * request[column]).to_list(), name=name),
            row=1,
            col=panel,
        )
    figure.update_xaxes(title_text="policy")
    figure.update_yaxes(title_text="% of fast mode's (request - fast)", row=1, col=1)
    figure.update_yaxes(title_text="percentage points (request - fast)", row=1, col=2)
    figure.update_layout(
        title="Fast mode against request level on the same requests", barmode="group"
    )
    return figure
