"""Every policy on the two axes the choice is made on: what it cost and whether it held the SLO.

The chosen policy should sit at or above the SLO target line, left of every baseline that also
sits there, and near the oracle (the limit) on the GPU-hours axis.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.policy_groups import CHOSEN, ORACLE, STATIC_PEAK, is_ablation, policy_colours
from dashboards.targets import ORACLE_GPU_HOURS_BOUND

#: Marker per part a policy plays; baselines get a plain circle.
SYMBOLS = {CHOSEN: "diamond", ORACLE: "star"}


def policies_figure(fleet_summary: pl.DataFrame, curated_policy: pl.DataFrame) -> go.Figure:
    """GPU-hours against SLO attainment, one trace per policy, with 95% CIs over days.

    Parameters
    ----------
    fleet_summary : pl.DataFrame
        One row per policy with ``gpu_hours``, ``slo_attainment`` and their ``*_ci_low`` /
        ``*_ci_high``.
    curated_policy : pl.DataFrame
        The chosen policy's row; its ``slo_attainment_target`` draws the target line.

    Returns
    -------
    go.Figure
        Per policy a marker with horizontal (GPU-hours) and vertical (attainment) error bars:
        a diamond for the chosen policy, a star for the oracle, open circles for ablations;
        a dashed line at the SLO attainment target and, when the oracle ran, a dotted one at
        :data:`dashboards.targets.ORACLE_GPU_HOURS_BOUND` x its GPU-hours.
    """
    summary = fleet_summary.sort("gpu_hours")
    colours = policy_colours(summary["policy"])
    target = 100 * curated_policy["slo_attainment_target"].item()
    figure = go.Figure()
    for r in summary.iter_rows(named=True):
        policy = r["policy"]
        attainment = 100 * r["slo_attainment"]
        symbol = SYMBOLS.get(policy, "circle-open" if is_ablation(policy) else "circle")
        figure.add_trace(
            go.Scatter(
                x=[r["gpu_hours"]],
                y=[attainment],
                name=policy,
                mode="markers+text" if policy in (CHOSEN, ORACLE, STATIC_PEAK) else "markers",
                text=[policy],
                textposition="top center",
                marker={"symbol": symbol, "size": 14, "color": colours[policy]},
                error_x={
                    "type": "data",
                    "array": [r["gpu_hours_ci_high"] - r["gpu_hours"]],
                    "arrayminus": [r["gpu_hours"] - r["gpu_hours_ci_low"]],
                },
                error_y={
                    "type": "data",
                    "array": [100 * r["slo_attainment_ci_high"] - attainment],
                    "arrayminus": [attainment - 100 * r["slo_attainment_ci_low"]],
                },
            )
        )
    low, high = summary["gpu_hours_ci_low"].min(), summary["gpu_hours_ci_high"].max()
    figure.add_trace(
        go.Scatter(
            x=[low, high],
            y=[target, target],
            name=f"SLO attainment target ({target:g}%)",
            mode="lines",
            line={"dash": "dash", "color": "green"},
        )
    )
    oracle = summary.filter(pl.col("policy") == ORACLE)
    if oracle.height:
        bound = ORACLE_GPU_HOURS_BOUND * oracle["gpu_hours"].item()
        floor = 100 * summary["slo_attainment_ci_low"].min()
        figure.add_trace(
            go.Scatter(
                x=[bound, bound],
                y=[floor, 100.0],
                name=f"{ORACLE_GPU_HOURS_BOUND:g} x oracle GPU-hours",
                mode="lines",
                line={"dash": "dot", "color": colours[ORACLE]},
            )
        )
    figure.update_xaxes(title_text="GPU-hours over the evaluation days")
    figure.update_yaxes(title_text="SLO attainment (% of intervals, lower of TTFT and TBT)")
    figure.update_layout(
        title="Policies: GPU-hours against SLO attainment (95% CI over evaluation days)"
    )
    return figure
