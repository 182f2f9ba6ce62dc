"""The report's second section in words: the telemetry the study read, which signals track
load, what the chosen policy's controller did, and where the scheduler placed instances."""

from __future__ import annotations

import polars as pl


def telemetry_lines(
    *,
    instance_samples: pl.DataFrame,
    signal_scores: pl.DataFrame,
    decisions: pl.DataFrame,
    placement: pl.DataFrame,
) -> list[str]:
    """Plain-text findings, each computed from the tables.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical telemetry table.
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.
    decisions : pl.DataFrame
        The chosen policy's count changes (``scaling_decisions``,
        :data:`policies.loop.ROLE_TARGETS_SCHEMA`).
    placement : pl.DataFrame
        A placement plan with ``s2`` and ``instances``.

    Returns
    -------
    list of str
        The telemetry covered; per (service, role) the signal with the highest |Pearson r| and
        the signal that gives up least at low load (lowest scale-in response: the paper's
        "decode utilisation stays busy" test, §5.3.2); the controller's scale-outs and
        scale-ins and the range of each pool; the instances placed.
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
        lines.append(_signal_line(service, role, scores))
    lines.append(_controller_line(decisions))
    lines.append(
        f"Placement: {placement['instances'].sum()} instances in {placement.height} rows "
        f"across {placement['s2'].n_unique()} S2 pod(s)."
    )
    return lines


def _signal_line(service: str, role: str, scores: pl.DataFrame) -> str:
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
    return line + "."


def _controller_line(decisions: pl.DataFrame) -> str:
    """Count changes by direction of the total; a change that keeps the total only moves
    instances between the roles (the ratio's rounding)."""
    change = (pl.col("next_prefill") + pl.col("next_decode")) - (
        pl.col("current_prefill") + pl.col("current_decode")
    )
    counts = decisions.select(
        out=(change > 0).sum(), into=(change < 0).sum(), even=(change == 0).sum()
    ).row(0, named=True)
    line = (
        f"Controller: {decisions.height} count changes over the evaluation days: "
        f"{counts['out']} scale-outs, {counts['into']} scale-ins, {counts['even']} rebalances"
    )
    for role in ("prefill", "decode"):
        both = pl.concat([decisions[f"current_{role}"], decisions[f"next_{role}"]])
        if both.len():
            line += f"; {role} {both.min()} to {both.max()} instances"
    return line + "."


def _format(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"
