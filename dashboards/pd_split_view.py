"""The P/D split sweep of the pressure tests (the paper's Fig. 4): decode tokens/s per instance
within the SLO as prefill instances are added to a fixed decode pool.

Too few prefill instances starve decode; too many add instances that serve nothing more, so
the per-instance figure peaks at one split. Curation picks that split as the P/D ratio.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl


def pd_split_figure(pressure_sweep: pl.DataFrame, curated_policy: pl.DataFrame) -> go.Figure:
    """Decode tok/s within SLO per instance against prefill instances, the chosen split marked.

    Parameters
    ----------
    pressure_sweep : pl.DataFrame
        ``prefill``, ``decode``, ``decode_tps_within_slo``: one row per split tried.
    curated_policy : pl.DataFrame
        The chosen policy's row; its ``pd_ratio`` marks the split in use.

    Returns
    -------
    go.Figure
        The sweep as a line (per instance: prefill and decode instances counted), and the
        split nearest the chosen ratio as a marker.
    """
    sweep = pressure_sweep.sort("prefill").with_columns(
        per_instance=pl.col("decode_tps_within_slo") / (pl.col("prefill") + pl.col("decode"))
    )
    ratio = curated_policy["pd_ratio"].item()
    chosen = sweep.sort((pl.col("prefill") / pl.col("decode") - ratio).abs()).row(0, named=True)
    decode = ", ".join(str(d) for d in sweep["decode"].unique().sort())
    figure = go.Figure(
        [
            go.Scatter(
                x=sweep["prefill"].to_list(),
                y=sweep["per_instance"].to_list(),
                name=f"sweep at {decode} decode instance(s)",
                mode="lines+markers",
            ),
            go.Scatter(
                x=[chosen["prefill"]],
                y=[chosen["per_instance"]],
                name=(f"chosen split {chosen['prefill']}P:{chosen['decode']}D (P/D {ratio:.2f})"),
                mode="markers",
                marker={"symbol": "star", "size": 16, "color": "#d62728"},
            ),
        ]
    )
    figure.update_xaxes(title_text="prefill instances")
    figure.update_yaxes(title_text="decode tok/s within SLO per instance (P + D)")
    figure.update_layout(title="Pressure test: P/D split sweep")
    return figure
