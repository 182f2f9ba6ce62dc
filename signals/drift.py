"""Has the recommended signal stopped tracking load? The study's verdict, re-checked day by day.

A per-instance target is only as good as the relation it was read from: a signal whose
correlation with load weakens, or whose slope against load moves, now asks a proportional
controller for the wrong pool size. llm-d users met this with KV-cache usage, a stock that
drifted apart from load while requests were dropped (docs/signals.md). :func:`daily_drift`
describes the recommended candidate on each UTC day of new telemetry and compares it with the
study's: a day is flagged when its correlation falls below the study's, or its slope moves
either way, by more than the two block-bootstrap bands allow.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from signals.study import MIN_CANDIDATE_INTERVALS, study_table

#: One row per day of :func:`daily_drift`.
DRIFT_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(),
    "n_intervals": pl.Int64(),
    "pearson": pl.Float64(),
    "slope": pl.Float64(),
    "weakened": pl.Boolean(),
    "reasons": pl.List(pl.String()),
}


def drift_reasons(reference: Mapping[str, float], day: Mapping[str, float]) -> list[str]:
    """Why ``day``'s relation with load is not the ``reference``'s, in words; empty if it is.

    Both are rows of :func:`signals.study_table` for the same candidate, each with its
    block-bootstrap bands. A relation has changed when the day's band and the reference's do
    not overlap. Comparing the day's point estimate with the reference's band would ignore the
    day's own sampling error: two spans of the same process would then disagree far more often
    than the band's 5% (a slope of the same pool, day against day, did so in our tests).
    Disjoint 95% intervals of equal width reject at about the 0.6% level. A correlation above
    its band is no weakening, so only a fall counts for it.
    """
    reasons = []
    if not day["pearson_high"] >= reference["pearson_low"]:
        reasons.append(
            f"correlation with load {day['pearson']:.2f} [{day['pearson_low']:.2f}, "
            f"{day['pearson_high']:.2f}], below the study's "
            f"[{reference['pearson_low']:.2f}, {reference['pearson_high']:.2f}]"
        )
    if not (
        day["slope_high"] >= reference["slope_low"] and day["slope_low"] <= reference["slope_high"]
    ):
        reasons.append(
            f"slope against load {day['slope']:.4g} [{day['slope_low']:.4g}, "
            f"{day['slope_high']:.4g}], apart from the study's "
            f"[{reference['slope_low']:.4g}, {reference['slope_high']:.4g}]: the per-instance "
            "target no longer sizes the pool"
        )
    return reasons


def daily_drift(
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    reference: Mapping[str, object],
    *,
    window_s: float | None,
) -> pl.DataFrame:
    """The reference candidate described on each UTC day of the telemetry, and whether its
    relation with load weakened there (:func:`drift_reasons`).

    Parameters
    ----------
    instance_samples, service_load : pl.DataFrame
        Canonical telemetry of the reference's service.
    reference : mapping
        The study's row of the candidate (``service``, ``role``, ``gpu_type``, ``signal`` and
        its statistics with their bands).
    window_s : float or None
        The study's window.

    Returns
    -------
    pl.DataFrame
        :data:`DRIFT_SCHEMA`, one row per day, in day order. A day too short to describe (fewer
        than the study's minimum intervals) or where the load is constant is left out.
    """
    service, role = reference["service"], reference["role"]
    candidate = {(role, reference["signal"])}
    day = pl.col("ts").dt.date()
    loads = service_load.filter(pl.col("service") == service).with_columns(day=day)
    samples = instance_samples.filter(
        (pl.col("service") == service) & (pl.col("role") == role)
    ).with_columns(day=day)
    rows = []
    for (date,), load in loads.group_by("day", maintain_order=True):
        part = samples.filter(pl.col("day") == date)
        if load.height < MIN_CANDIDATE_INTERVALS or part.is_empty():
            continue
        try:
            table = study_table(
                part.drop("day"), load.drop("day"), window_s=window_s, candidates=candidate
            )
        except ValueError:  # nothing describable that day: too short, or constant load
            continue
        found = table.filter(
            pl.col("gpu_type").eq_missing(pl.lit(reference["gpu_type"], pl.String))
        )
        if found.is_empty():
            continue
        today = found.row(0, named=True)
        reasons = drift_reasons(reference, today)
        rows.append(
            {
                "day": date,
                "n_intervals": today["n_intervals"],
                "pearson": today["pearson"],
                "slope": today["slope"],
                "weakened": bool(reasons),
                "reasons": reasons,
            }
        )
    return pl.DataFrame(rows, schema=DRIFT_SCHEMA).sort("day")
