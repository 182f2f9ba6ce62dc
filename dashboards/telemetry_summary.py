"""The telemetry the report rests on, in words: what it covers, where it has gaps, and what it
does not measure.

The signal study and the policy's targets are only as good as the telemetry under them, so the
health page says plainly where an instance stopped reporting and which signals were never
measured (a null is "not measured", never a zero: docs/telemetry-schema.md).
"""

from __future__ import annotations

import polars as pl

from dashboards.wording import percent
from signals import LOAD_COLUMNS
from signals.study import ROLE_LATENCY
from telemetry.gaps import gaps
from telemetry.schema import INSTANCE_METRIC_COLUMNS, LATENCY_COLUMNS

#: How many instances with gaps the page names, worst first.
NAMED_GAPS = 5


def telemetry_lines(instance_samples: pl.DataFrame, service_load: pl.DataFrame) -> list[str]:
    """What the canonical telemetry covers, its gaps and what it leaves unmeasured.

    Parameters
    ----------
    instance_samples, service_load : pl.DataFrame
        The canonical telemetry tables of the report's service.

    Returns
    -------
    list of str
        The span, instances per role and rows; the gaps (intervals an instance skipped between
        its first and its last sample), the worst instances named with where their longest gap
        starts; per role, the signals never measured and those missing in some intervals; the
        offered-load columns never or partly measured.
    """
    if instance_samples.is_empty():
        return ["Telemetry: the store holds no instance samples for this service."]
    start, end = instance_samples.select(pl.col("ts").min().alias("start"), pl.col("ts").max()).row(
        0
    )
    roles = (
        instance_samples.group_by("role")
        .agg(pl.col("instance_id").n_unique())
        .sort("role")
        .iter_rows()
    )
    intervals = ", ".join(f"{s:g} s" for s in instance_samples["interval_s"].unique().sort())
    lines = [
        f"Telemetry: {instance_samples['instance_id'].n_unique()} instances "
        f"({', '.join(f'{n} {role}' for role, n in roles)}), {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC at {intervals} intervals: {instance_samples.height:,} "
        f"instance samples and {service_load.height:,} intervals of offered load."
    ]
    return lines + gap_lines(instance_samples) + unmeasured_lines(instance_samples, service_load)


def gap_lines(instance_samples: pl.DataFrame) -> list[str]:
    found = gaps(instance_samples)
    instances = instance_samples["instance_id"].n_unique()
    if found.is_empty():
        return [
            f"Gaps: none. Each of the {instances} instances reports every interval from its "
            "first sample to its last."
        ]
    worst = (
        found.group_by("service", "instance_id")
        .agg(
            total=pl.col("missing").sum(),
            longest=pl.col("missing").max(),
            after=pl.col("after").sort_by("missing", "after", descending=[True, False]).first(),
        )
        .sort("total", "instance_id", descending=[True, False])
    )
    lines = [
        f"Gaps: MISSING {found['missing'].sum():,} interval(s) in {found.height:,} gap(s) on "
        f"{worst.height} of {instances} instances; the signal study and the backtest read "
        "those intervals as not measured."
    ]
    lines += [
        f"{r['service']} {r['instance_id']}: {r['total']:,} missing interval(s); the longest "
        f"gap, {r['longest']:,} interval(s), after {r['after']:%Y-%m-%d %H:%M:%S} UTC."
        for r in worst.head(NAMED_GAPS).iter_rows(named=True)
    ]
    if worst.height > NAMED_GAPS:
        lines.append(f"... and {worst.height - NAMED_GAPS} more instance(s) with gaps.")
    return lines


def unmeasured_lines(instance_samples: pl.DataFrame, service_load: pl.DataFrame) -> list[str]:
    """Per role the signals with no value in any interval, and those missing in some; then the
    offered-load columns likewise.

    A role is not asked for the other role's latency (a prefill pool answers for the first
    token, a decode pool for the gaps between tokens: :data:`signals.study.ROLE_LATENCY`),
    and a latency quantile is null in an interval that completed no request, so some missing
    latencies are expected at light load.
    """
    lines = []
    for (role,), rows in sorted(instance_samples.partition_by("role", as_dict=True).items()):
        held = {quantile.split("_")[0] for quantile in ROLE_LATENCY[role]}
        metrics = [
            c
            for c in INSTANCE_METRIC_COLUMNS
            if c not in LATENCY_COLUMNS or c.split("_")[0] in held
        ]
        lines.append(_missing(f"{role.capitalize()} instances", rows, metrics))
    lines.append(_missing("Offered load", service_load, list(LOAD_COLUMNS)))
    return lines


def _missing(what: str, rows: pl.DataFrame, columns: list[str]) -> str:
    shares = rows.select(pl.col(columns).null_count() / max(rows.height, 1)).row(0, named=True)
    never = [c for c in columns if shares[c] == 1.0]
    partly = [c for c in columns if 0.0 < shares[c] < 1.0]
    if not never and not partly:
        return f"{what}: every signal measured in every interval."
    said = []
    if never:
        said.append(f"never measured: {', '.join(never)}")
    if partly:
        said.append(
            "not measured in some intervals: "
            + ", ".join(f"{c} ({percent(shares[c], 1)} of intervals)" for c in partly)
        )
    if set(partly) & LATENCY_COLUMNS:
        said.append("a latency is not measured in an interval that completed no request")
    return f"{what}: {'; '.join(said)}."
