"""Telemetry over time per role: the raw material of the signal study (paper Fig. 2)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from signals import role_series
from telemetry.schema import SERVICE_LOAD, conform


def telemetry_figure(instance_samples: pl.DataFrame, service_load: pl.DataFrame) -> go.Figure:
    """GPU utilisation per role, and served decode TPS against offered output TPS, over time.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table; aggregated with :func:`signals.role_series`.
    service_load : pl.DataFrame
        The canonical ``service_load`` table.

    Returns
    -------
    go.Figure
        Top: mean GPU utilisation of the ready instances, one line per (service, role).
        Bottom: total decode TPS of each role that decodes, and each service's offered output
        TPS, in tokens/s.

    Notes
    -----
    Side by side, the two panels show the paper's contrast (§5.3.2, Fig. 2c): prefill
    utilisation follows load while decode utilisation stays high.
    """
    series = role_series(instance_samples)
    load = conform(service_load, SERVICE_LOAD).sort("service", "ts")
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        subplot_titles=("GPU utilisation per role", "Decode TPS served vs offered output TPS"),
    )
    roles = series.partition_by("service", "role", maintain_order=True, as_dict=True)
    for (service, role), group in roles.items():
        times = group["ts"].to_list()
        name = f"{service} {role}"
        figure.add_trace(
            go.Scatter(x=times, y=group["gpu_util_ratio"].to_list(), name=f"{name} GPU util"),
            row=1,
            col=1,
        )
        if role != "prefill":
            figure.add_trace(
                go.Scatter(
                    x=times, y=group["decode_tps"].to_list(), name=f"{name} tokens/s served"
                ),
                row=2,
                col=1,
            )
    for (service,), group in load.partition_by(
        "service", maintain_order=True, as_dict=True
    ).items():
        figure.add_trace(
            go.Scatter(
                x=group["ts"].to_list(),
                y=group["output_tps"].to_list(),
                name=f"{service} offered output tokens/s",
                line={"dash": "dot"},
            ),
            row=2,
            col=1,
        )
    figure.update_yaxes(title_text="GPU util (ratio)", range=[0, 1.05], row=1, col=1)
    figure.update_yaxes(title_text="tokens/s", row=2, col=1)
    figure.update_xaxes(title_text="time (UTC)", row=2, col=1)
    figure.update_layout(title="Telemetry per role")
    return figure
