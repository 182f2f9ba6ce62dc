"""Class, rank and recommend candidate signals from their statistics alone.

The paper sorts candidate signals into those a proportional controller can track (throughput),
those fit only for negative-feedback alarms (latency, which is flat and then falls off a cliff)
and those it rejected (decode GPU utilisation, which stays high at light load) (§5.3.2-§5.3.4).
:func:`classify` reproduces that sorting from the rows of :func:`signals.study.study_table`,
with every rule stated on statistics and no signal named: which signal wins is for the data to
say. :func:`recommend` picks the primary signal of a service and its per-instance target.

Rules, tried in this order on each row (``[low, high]`` is a statistic's bootstrap interval;
``load_dynamic_range`` the dynamic range of the load itself):

1. **unusable** when the signal is constant (R² undefined): it carries no information.
2. **negative_feedback** when a line fails in the way latencies fail near saturation, and the
   fit that shows it explains at least :data:`DECOUPLED_R2` of the signal:

   - a *cliff*: :func:`signals.statistics.linearity` finds a significant knee
     (p < :data:`~signals.statistics.KNEE_LEVEL`) above which the slope is at least
     :data:`~signals.statistics.CLIFF_SLOPE_RATIO` times the slope below; or
   - a *convex* bend: RESET rejects the line strongly (p <= :data:`STRONG_P`) and the
     signal keeps less of its high-load value at low load than load does
     (``dynamic_range_high < load_dynamic_range``): it grows faster than load at the top.

   A feedback rule needs a threshold that is crossed before the SLO is, not a signal that
   falls at low load, so saturation at the bottom does not disqualify it.
3. **unusable** when any of these holds (all that hold are given as reasons):

   - *saturated*: ``dynamic_range_low >= SATURATED_RANGE``, it cannot drive scale-in;
   - *flattens*: a knee (p <= :data:`STRONG_P`) above which the slope is at most
     ``1 / CLIFF_SLOPE_RATIO`` of the slope below, it cannot drive scale-out past the knee;
   - *decoupled*: ``r_squared_high < DECOUPLED_R2``, noise or a stock that drifts apart
     from load.
4. **proportional** when all of these hold:

   - linear: ``r_squared_low >= LINEAR_R2`` (rules 2 and 3 have excluded cliffs and
     flattening knees);
   - responsive: ``dynamic_range_high < SATURATED_RANGE``;
   - through the origin: the interval of ``dynamic_range / load_dynamic_range`` reaches into
     ``[1 / PROPORTIONAL_BAND, PROPORTIONAL_BAND]``;
   - clean: ``snr_low >= MIN_SNR``.
5. **unusable** otherwise, with the reason "none of the rules for proportional control or
   negative feedback held" and the conditions of rule 4 that failed.

Rank, per service: proportional candidates first, by ``r_squared_low`` (descending) then
``dynamic_range_high`` (ascending: the more responsive first); then negative_feedback, by
``breach_auc`` (how well the signal warns of the next interval's breach) then
``r_squared_low``; then unusable, by ``r_squared_low``. Undefined values sort last; ties go
by role, GPU type (the whole role first) and signal, so the order is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import polars as pl

from signals.statistics import CLIFF_SLOPE_RATIO

#: R² (lower bound) a proportional signal needs. At 0.7 the line leaves a residual standard
#: deviation of sqrt(0.3) = 0.55 of the signal's spread (|r| >= 0.84, a strong correlation);
#: the lower bound asks the data to show linearity, not merely to allow it. Decode token
#: throughput on the Azure hour at 60 s has R² 0.94 [0.75, 0.96] (§5.3.2).
LINEAR_R2 = 0.7

#: R² (upper bound) below which a signal is decoupled from load: even at the top of its interval
#: load explains under 30% of its variance (|r| < 0.55), so a controller tracking it would mostly
#: track noise, or a stock (queue, cache) that drifted apart from load.
DECOUPLED_R2 = 0.3

#: Dynamic range (mean at the lowest fifth of load over the highest) at which a signal is
#: saturated: a controller sized on it at peak would release at most 15% of the pool when load
#: falls to its lowest fifth, however far load falls. The paper's example, decode GPU
#: utilisation, stays high at light load (§5.3.2, Fig. 2c); on the Azure hour at 60 s it reads
#: 0.94 [0.91, 1.00] while decode load falls to 0.62. One bound both ways: unusable when the
#: whole interval is at or above it, proportional only when the whole interval is below it.
SATURATED_RANGE = 0.85

#: How far a proportional signal's dynamic range may sit from the load's own, as a ratio either
#: way. A signal proportional to load falls as load does (ratio 1); a signal with a floor (a
#: latency's service time at zero load) falls less, and a pool sized by it at peak stays too
#: large at low load by this ratio. 1.2 tolerates a pool a fifth too large at the lowest fifth
#: of load, about one scale-in step, and the interval is what must reach the band, so an hour
#: of data (decode token throughput: [0.94, 1.31] on Azure) suffices.
PROPORTIONAL_BAND = 1.2

#: Signal-to-noise ratio (lower bound) a proportional signal needs: its fitted values at light
#: and heavy load (5th and 95th percentile of load) lie at least 4 residual standard deviations
#: apart, so with a target midway, noise alone misreads light load as heavy in about 2% of
#: intervals (2 standard deviations, one-sided, for Gaussian noise) (§5.3.2: high SNR).
MIN_SNR = 4.0

#: Bootstrap p-value at or below which RESET or the knee test rejects the line strongly, where
#: that alone decides a class (a convex bend, a flattening knee). The block-bootstrapped RESET
#: still rejects a truly linear signal 10-15% of the time at 5% (docs/signals.md), and a knee
#: found at 5% in the few intervals at one end of the load range is often noise, so 5% would
#: call linear signals curved; 1% asks for strong evidence and is reachable with the default
#: 500 resamples (smallest p-value 1/501).
STRONG_P = 0.01

CLASSES = ("proportional", "negative_feedback", "unusable")

#: Columns of :func:`recommend`'s result stored as a table (one row per service).
RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "signal": pl.String(),
    "role": pl.String(),
    "gpu_type": pl.String(),
    "target_per_instance": pl.Float64(),
    "target_source": pl.String(),
}


def classify(table: pl.DataFrame) -> pl.DataFrame:
    """Class and rank every candidate of a study table by the rules of the module docstring.

    Parameters
    ----------
    table : pl.DataFrame
        Rows of :func:`signals.study.study_table` (any order).

    Returns
    -------
    pl.DataFrame
        ``table`` with ``class`` (one of :data:`CLASSES`), ``reasons`` (list of str, the rules
        that decided the class, in words with their numbers) and ``rank`` (1 = best, per
        service), sorted by service and rank.
    """
    verdicts = [_verdict(row) for row in table.iter_rows(named=True)]
    classified = table.with_columns(
        pl.Series("class", [v[0] for v in verdicts], pl.String),
        pl.Series("reasons", [v[1] for v in verdicts], pl.List(pl.String)),
    )
    finite = {
        c: pl.col(c).fill_nan(None) for c in ("breach_auc", "r_squared_low", "dynamic_range_high")
    }
    keys = {
        "_class": pl.col("class").replace_strict(CLASSES, list(range(len(CLASSES)))),
        "_first": pl.when(pl.col("class") == "negative_feedback")
        .then(finite["breach_auc"])
        .otherwise(finite["r_squared_low"]),
        "_r_squared": finite["r_squared_low"],
        "_range": finite["dynamic_range_high"],
    }
    return (
        classified.with_columns(**keys)
        .sort(
            "service",
            *keys,
            "role",
            "gpu_type",
            "signal",
            descending=[False, False, True, True, False, False, False, False],
            nulls_last=[False, False, True, True, True, False, False, False],
        )
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("service"))
        .drop(*keys)
    )


def recommend(
    classified: pl.DataFrame,
    *,
    observed_targets: Mapping[tuple[str, str, str], float | None] | None = None,
    pressure_targets: Mapping[tuple[str, str, str], float] | None = None,
) -> dict | None:
    """The service's primary scaling signal and its per-instance target.

    Parameters
    ----------
    classified : pl.DataFrame
        :func:`classify`'s output for one service.
    observed_targets : mapping, optional
        Per (service, role, signal), the target read from the data
        (:func:`signals.study.target_from_data`), None where the data did not reach the SLO.
    pressure_targets : mapping, optional
        Per (service, role, signal), the target from a pressure test of the role's pool
        (the policy's curation in ``policies/``, which ``signals/`` does not import).

    Returns
    -------
    dict or None
        ``service``, ``signal``, ``role``, ``gpu_type`` (null for the whole role),
        ``target_per_instance`` and ``target_source`` (``"observed"``, ``"pressure_test"``,
        or None with a None target when neither mapping has one); None when no candidate
        is proportional.

    Raises
    ------
    ValueError
        If ``classified`` holds several services: each has its own recommendation.

    Notes
    -----
    The pick is the best-ranked proportional candidate, the whole role's row before any per-GPU
    type's: one target for the pool is what the paper's proportional controller tracks
    (§5.3.3). A target read from the data is preferred where there is one, since it needs no
    model of the serving engine; a pressure test (§5.3.5) stands in where the data never came
    near the SLO. Targets are keyed by role, not GPU type: where the pick is one type's row
    (no whole-role row is proportional), the caller passes that type's target.
    """
    services = classified["service"].unique()
    if services.len() > 1:
        raise ValueError(f"recommend takes one service at a time, got {sorted(services)}")
    candidates = classified.filter(pl.col("class") == "proportional").sort(
        pl.col("gpu_type").is_not_null(), "rank"
    )
    if candidates.is_empty():
        return None
    best = candidates.row(0, named=True)
    key = (best["service"], best["role"], best["signal"])
    target, source = (observed_targets or {}).get(key), "observed"
    if target is None:
        target, source = (pressure_targets or {}).get(key), "pressure_test"
    if target is None:
        source = None
    return {
        "service": best["service"],
        "signal": best["signal"],
        "role": best["role"],
        "gpu_type": best["gpu_type"],
        "target_per_instance": target,
        "target_source": source,
    }


def _verdict(row: dict) -> tuple[str, list[str]]:
    """Class and reasons of one study row, by the rules of the module docstring."""
    if math.isnan(row["r_squared"]):
        return "unusable", ["constant over the study: it carries no information about load"]
    feedback = _feedback_reasons(row)
    if feedback:
        return "negative_feedback", feedback
    rejected = _unusable_reasons(row)
    if rejected:
        return "unusable", rejected
    held, failed = _proportional_checks(row)
    if not failed:
        return "proportional", held
    return "unusable", [
        "none of the rules for proportional control or negative feedback held: " + "; ".join(failed)
    ]


def _feedback_reasons(row: dict) -> list[str]:
    """Rule 2: a cliff or a convex bend, on a fit that explains the signal."""
    reasons = []
    two_segments = row["r_squared"] + (row["r_squared_gain"] if row["cliff"] else 0.0)
    if row["cliff"] and two_segments >= DECOUPLED_R2:
        reasons.append(
            f"falls off a cliff at load {row['knee_load']:.4g}: the slope above is "
            f"{row['slope_ratio']:.3g}x the slope below (knee p = {row['knee_pvalue']:.3g}, "
            f"two segments explain R² {two_segments:.2f}): an alarm for negative feedback, "
            "silent below the knee and overreacting above it"
        )
    convex = row["dynamic_range_high"] < row["load_dynamic_range"]
    if row["reset_pvalue"] <= STRONG_P and convex and row["r_squared_high"] >= DECOUPLED_R2:
        reasons.append(
            f"grows faster than load at the top: a line is rejected (RESET p = "
            f"{row['reset_pvalue']:.3g}) and at low load the signal keeps "
            f"{_interval(row, 'dynamic_range')} of its high-load value where load keeps "
            f"{row['load_dynamic_range']:.2f}: an alarm for negative feedback"
        )
    return reasons


def _unusable_reasons(row: dict) -> list[str]:
    """Rule 3: saturated, flattening or decoupled."""
    reasons = []
    if row["dynamic_range_low"] >= SATURATED_RANGE:
        reasons.append(
            f"falls only to {_interval(row, 'dynamic_range')} of its high-load value at low "
            f"load (at least {SATURATED_RANGE}), while load falls to "
            f"{row['load_dynamic_range']:.2f}: saturated, cannot drive scale-in"
        )
    if row["knee_pvalue"] <= STRONG_P and row["slope_ratio"] <= 1 / CLIFF_SLOPE_RATIO:
        reasons.append(
            f"flattens above load {row['knee_load']:.4g}: the slope above is "
            f"{row['slope_ratio']:.3g}x the slope below (knee p = {row['knee_pvalue']:.3g}): "
            "saturated at the top, cannot drive scale-out past the knee"
        )
    if row["r_squared_high"] < DECOUPLED_R2:
        reasons.append(
            f"load explains at most {row['r_squared_high']:.2f} of its variance (R² "
            f"{_interval(row, 'r_squared')}, below {DECOUPLED_R2}): noisy or decoupled "
            "from load"
        )
    return reasons


def _proportional_checks(row: dict) -> tuple[list[str], list[str]]:
    """Rule 4's conditions, as (those that held, those that failed), each in words."""
    held, failed = [], []

    def check(ok: bool, yes: str, no: str) -> None:
        (held if ok else failed).append(yes if ok else no)

    r2 = _interval(row, "r_squared")
    check(
        row["r_squared_low"] >= LINEAR_R2,
        f"tracks load linearly: R² {r2}",
        f"R² {r2} has a lower bound under {LINEAR_R2}: not linear enough",
    )
    dynamic = _interval(row, "dynamic_range")
    check(
        row["dynamic_range_high"] < SATURATED_RANGE,
        f"falls to {dynamic} of its high-load value at low load: can drive scale-in",
        f"falls only to {dynamic} of its high-load value at low load, not surely under "
        f"{SATURATED_RANGE}: may not drive scale-in",
    )
    load = row["load_dynamic_range"]
    check(
        load / PROPORTIONAL_BAND <= row["dynamic_range_high"]
        and row["dynamic_range_low"] <= load * PROPORTIONAL_BAND,
        f"falls as load does, which falls to {load:.2f}: proportional",
        f"falls to {dynamic} of its high-load value where load falls to {load:.2f}, not "
        f"within a factor {PROPORTIONAL_BAND} of it: not proportional, "
        + (
            "a floor would keep the pool too large at low load"
            if row["dynamic_range_low"] > load
            else "it would leave the pool too small at low load"
        ),
    )
    snr = _interval(row, "snr")
    check(
        row["snr_low"] >= MIN_SNR,
        f"SNR {snr}: light and heavy load lie well apart in noise units",
        f"SNR {snr} has a lower bound under {MIN_SNR}: too noisy",
    )
    return held, failed


def _interval(row: dict, name: str) -> str:
    """A statistic with its bootstrap interval, e.g. ``0.64 [0.58, 0.81]``."""
    return f"{row[name]:.2f} [{row[f'{name}_low']:.2f}, {row[f'{name}_high']:.2f}]"
