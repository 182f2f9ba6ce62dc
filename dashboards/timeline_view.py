"""The evaluation days over time: offered load, the instances each policy paid for per role, and
the latency each policy's pools saw against the SLO.

Side by side with the oracle (the limit) and static_peak (the fixed deployment), the chosen
policy's pools should follow the load's diurnal shape closely and its latencies stay under the
SLO lines; a policy that saves by running too few instances shows as latency above them.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboards.policy_groups import is_ablation, policy_colours
from dashboards.wording import LOAD_NAMES

ROLES = ("prefill", "decode")
#: The latency panels: the timeline's column, its heading, the SLO's column in
#: ``curated_policy``, and the scale to the panel's unit.
LATENCIES = (
    ("ttft_p99_s", "TTFT p99", "ttft_p99_slo_s", "s", 1.0),
    ("tbt_p99_s", "TBT p99", "tbt_p99_slo_s", "ms", 1000.0),
)
SLO_COLOUR = "green"


def timeline_figure(
    fleet_timeline: pl.DataFrame, curated_policy: pl.DataFrame, *, shown: Sequence[str]
) -> go.Figure:
    """Offered requests/s; prefill and decode instances; TTFT and TBT p99 against the SLO.

    Parameters
    ----------
    fleet_timeline : pl.DataFrame
        :data:`policies.fleet.TIMELINE_SCHEMA`: per policy per bin ``offered_rps``,
        ``prefill_instances``, ``decode_instances`` and the worst interval's ``ttft_p99_s``
        and ``tbt_p99_s``.
    curated_policy : pl.DataFrame
        The chosen policy's row, for the SLO's ``ttft_p99_slo_s`` and ``tbt_p99_slo_s``.
    shown : sequence of str
        The policies drawn when the page opens, first in the legend. Every other policy of the
        timeline but the ablations (the chosen policy less one mechanism, which the policies
        figure places) is listed after them and drawn on a click on its legend entry.

    Returns
    -------
    go.Figure
        Five panels sharing the time axis: offered load (the same for every policy, drawn
        once, from the first shown policy's rows), prefill instances, decode instances, TTFT
        p99 (s) and TBT p99 (ms) on log axes, each latency with its SLO as a dashed line; one
        legend entry per policy covering its four panels.

    Raises
    ------
    ValueError
        If a policy to show has no rows in the timeline.
    """
    missing = sorted(set(shown) - set(fleet_timeline["policy"]))
    if missing:
        raise ValueError(f"no timeline rows for {missing}")
    colours = policy_colours(fleet_timeline["policy"])
    by_policy = fleet_timeline.sort("ts").partition_by("policy", as_dict=True)
    others = sorted(
        policy for (policy,) in by_policy if policy not in shown and not is_ablation(policy)
    )
    curated = curated_policy.row(0, named=True)
    figure = make_subplots(
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=(
            "Offered load",
            *(f"{role.capitalize()} instances paid (mean per bin)" for role in ROLES),
            *(f"{name} of the slowest pool (worst interval per bin)" for _, name, *_ in LATENCIES),
        ),
    )
    load = by_policy[(shown[0],)]
    figure.add_trace(
        go.Scatter(
            x=load["ts"].to_list(),
            y=load["offered_rps"].to_list(),
            name=LOAD_NAMES["request_rate_rps"],
            line={"color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    for policy in [*shown, *others]:
        rows = by_policy[(policy,)]
        panels = [(f"{role}_instances", 1.0) for role in ROLES]
        panels += [(column, scale) for column, _, _, _, scale in LATENCIES]
        for index, (column, scale) in enumerate(panels):
            figure.add_trace(
                go.Scatter(
                    x=rows["ts"].to_list(),
                    y=(scale * rows[column]).to_list(),
                    name=policy,
                    legendgroup=policy,
                    showlegend=index == 0,
                    visible=True if policy in shown else "legendonly",
                    line={"color": colours[policy], "shape": "hv", "width": 1.5},
                ),
                row=index + 2,
                col=1,
            )
    ends = [load["ts"].min(), load["ts"].max()]
    for index, (_, name, slo_column, unit, scale) in enumerate(LATENCIES):
        slo = scale * curated[slo_column]
        figure.add_trace(
            go.Scatter(
                x=ends,
                y=[slo, slo],
                name=f"{name} SLO ({slo:g} {unit})",
                mode="lines",
                line={"dash": "dash", "color": SLO_COLOUR},
            ),
            row=index + 4,
            col=1,
        )
        figure.update_yaxes(title_text=unit, type="log", row=index + 4, col=1)
    figure.update_yaxes(title_text="requests/s", row=1, col=1)
    for index in range(len(ROLES)):
        figure.update_yaxes(title_text="instances", row=index + 2, col=1)
    figure.update_xaxes(title_text="time (UTC)", row=5, col=1)
    figure.update_layout(
        title="Evaluation days: offered load, instances per role, latency against the SLO",
        height=1300,
    )
    return figure
