"""One self-contained HTML page: summary text computed from the tables, then the figures.

The page embeds plotly.js once (``include_plotlyjs=True`` on the first figure), so it opens
offline; the CDN variant renders blank without a network.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from dashboards.decision_view import decisions_figure
from dashboards.placement_view import placement_figure
from dashboards.signal_view import signal_scores_figure
from dashboards.telemetry_view import telemetry_figure
from policies import SCALE_IN, SCALE_OUT

TITLE = "HeteroScale report"
FIGURE_HEIGHT = "560px"


def summary_lines(
    *,
    instance_samples: pl.DataFrame,
    signal_scores: pl.DataFrame,
    decisions: pl.DataFrame,
    placement: pl.DataFrame,
    backtest_summary: pl.DataFrame,
) -> list[str]:
    """Plain-text findings of the run, each computed from the tables.

    Returns
    -------
    list of str
        The telemetry covered; per (service, role) the signal with the highest |Pearson r| and
        the signal that gives up least at low load (lowest scale-in response: the paper's
        "decode utilisation stays busy" test, §5.3.2); the scale actions taken; the instances
        placed; per service, what the closed-loop backtest saved or lost against the fixed
        deployment.
    """
    span = instance_samples.select(pl.col("ts").min().alias("start"), pl.col("ts").max())
    start, end = span.row(0)
    lines = [
        f"Telemetry: {instance_samples['service'].n_unique()} service(s), "
        f"{instance_samples['instance_id'].n_unique()} instances, {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC."
    ]
    correlated = signal_scores.filter(pl.col("pearson_r").is_not_null()).sort(
        "service", "role", "signal"
    )
    roles = correlated.partition_by("service", "role", maintain_order=True, as_dict=True)
    for (service, role), scores in roles.items():
        best = scores.sort(pl.col("pearson_r").abs(), "signal", descending=[True, False]).row(
            0, named=True
        )
        line = (
            f"{service} {role}: {best['signal']} tracks offered load best "
            f"(Pearson r = {best['pearson_r']:.2f}, scale-in response "
            f"{_format(best['scale_in_response'])})"
        )
        responsive = scores.filter(pl.col("scale_in_response").is_not_null())
        if responsive.height:
            weakest = responsive.sort("scale_in_response", "signal").row(0, named=True)
            line += (
                f"; {weakest['signal']} gives up least at low load "
                f"(scale-in response {weakest['scale_in_response']:.2f}), unfit to scale in on"
            )
        lines.append(line + ".")
    taken = dict(decisions["action"].value_counts().iter_rows())
    lines.append(
        f"Controller: {taken.get(SCALE_OUT, 0)} scale-outs and {taken.get(SCALE_IN, 0)} "
        f"scale-ins over {decisions.height} control intervals."
    )
    lines.append(
        f"Placement: {placement['instances'].sum()} instances in {placement.height} rows "
        f"across {placement['s2'].n_unique()} S2 pod(s)."
    )
    for (service,), runs in backtest_summary.partition_by("service", as_dict=True).items():
        lines.append(_backtest_line(service, runs))
    return lines


def _backtest_line(service: str, runs: pl.DataFrame) -> str:
    """The closed-loop coordinated run against the fixed deployment, on the paper's terms:
    GPU-hours and utilisation, at what tail latency."""
    by_run = {row["run"]: row for row in runs.iter_rows(named=True)}
    fixed, coordinated = by_run["fixed"], by_run["coordinated"]
    hours = [r["gpu_hours_prefill"] + r["gpu_hours_decode"] for r in (fixed, coordinated)]
    return (
        f"{service} backtest (closed loop): {hours[1]:.1f} GPU-hours against {hours[0]:.1f} "
        f"fixed ({hours[1] / hours[0] - 1:+.1%}); GPU utilisation {coordinated['gpu_util']:.1%} "
        f"against {fixed['gpu_util']:.1%} "
        f"({100 * (coordinated['gpu_util'] - fixed['gpu_util']):+.1f} points); TTFT p99 "
        f"{coordinated['ttft_p99_s']:.2f} s against {fixed['ttft_p99_s']:.2f} s; TPOT p99 "
        f"{1000 * coordinated['tpot_p99_s']:.1f} ms against {1000 * fixed['tpot_p99_s']:.1f} ms."
    )


def write_report(
    path: str | os.PathLike[str],
    *,
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    signal_scores: pl.DataFrame,
    decisions: pl.DataFrame,
    placement: pl.DataFrame,
    backtest_decisions: pl.DataFrame,
    backtest_summary: pl.DataFrame,
) -> Path:
    """Write the report page and return its path.

    Parameters
    ----------
    path : str or os.PathLike
        Where the HTML goes; parent folders are created.
    instance_samples, service_load : pl.DataFrame
        The canonical telemetry tables.
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.
    decisions : pl.DataFrame
        The output of :func:`policies.replay_decisions`.
    placement : pl.DataFrame
        A placement plan with ``action``, ``s2``, ``gpu_type`` and ``instances``.
    backtest_decisions, backtest_summary : pl.DataFrame
        The closed-loop backtest's decisions (:func:`policies.run_backtest`) and one
        :func:`policies.summarise_run` row per run, ``fixed`` and ``coordinated``, per service.

    Returns
    -------
    Path
        ``path``. The page is written to a sibling temporary file and renamed into place, so a
        reader never sees half a page.
    """
    figures = [
        telemetry_figure(instance_samples, service_load),
        signal_scores_figure(signal_scores),
        decisions_figure(decisions),
        placement_figure(placement),
        decisions_figure(
            backtest_decisions,
            title="Closed-loop backtest: placed vs target instances per decision",
        ),
    ]
    lines = summary_lines(
        instance_samples=instance_samples,
        signal_scores=signal_scores,
        decisions=decisions,
        placement=placement,
        backtest_summary=backtest_summary,
    )
    summary = "\n".join(f"<li>{html.escape(line)}</li>" for line in lines)
    body = "\n".join(
        _figure_html(figure, with_plotlyjs=index == 0) for index, figure in enumerate(figures)
    )
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{TITLE}</title>\n"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}</style>\n"
        f"</head>\n<body>\n<h1>{TITLE}</h1>\n<ul>\n{summary}\n</ul>\n{body}\n</body>\n</html>\n"
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return target


def _figure_html(figure: go.Figure, *, with_plotlyjs: bool) -> str:
    return figure.to_html(
        full_html=False, include_plotlyjs=with_plotlyjs, default_height=FIGURE_HEIGHT
    )


def _format(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"
