"""The signal study's table: every candidate's statistics against the load its role serves.

A candidate is one signal of one role of one service, on the whole role and, where the role
runs on several GPU types, on each type's instances alone: a signal that means one thing on
L20 and another on H20 would need a target per type (§5.3.2, Fig. 2). Each row holds
:func:`signals.describe` of the candidate against its role's offered load
(:data:`signals.ROLE_LOAD`); :mod:`signals.classify` classes and ranks the rows. Also here:
:func:`target_from_data`, the per-instance target a signal's history supports, if it ever came
close enough to the SLO to show one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping

import numpy as np
import polars as pl
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from signals.aggregate import SIGNALS, SUM_SIGNALS, resample, role_series
from signals.classify import classify, recommend
from signals.paired import MIN_INTERVALS, is_constant
from signals.scoring import ROLE_LOAD
from signals.statistics import Description, describe, dynamic_range
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD, conform

logger = logging.getLogger(__name__)

#: One row of the study per candidate, in this order.
CANDIDATE_KEY = ("service", "role", "gpu_type", "signal")

#: The latency quantiles each role is held to, named as the SLO's fields: a prefill pool
#: answers for the first token, a decode pool for the gaps between tokens, a colocated engine
#: for both.
ROLE_LATENCY = {
    "prefill": ("ttft_p99_s",),
    "decode": ("tbt_p99_s",),
    "colocated": ("ttft_p99_s", "tbt_p99_s"),
}

#: :func:`target_from_data` reads a target only from data whose latency came within this share
#: of the SLO: further away, the highest load seen says where the data stops, not where the
#: SLO is crossed.
NEAR_SLO = 0.10

#: Largest lead or lag tried (:func:`signals.statistics.lead_lag`), in intervals: describe's
#: default, 5 minutes either way at the 60 s control interval. Shorter candidates try fewer,
#: since at every shift :data:`~signals.paired.MIN_INTERVALS` pairs of changes must overlap.
MAX_LAG = 5

#: Fewest intervals a candidate needs: lead/lag needs MIN_INTERVALS changes, one interval more.
MIN_CANDIDATE_INTERVALS = MIN_INTERVALS + 1

SERIES_BY = ("service", "role", "gpu_type")

#: A study of fewer intervals than this, summed over its candidates, runs in one process.
#: Starting two workers (each imports numpy, scipy, statsmodels and scikit-learn) took 1.4 s
#: on an idle 2-core machine, what a second core saves on about 20,000 intervals at 0.14 ms an
#: interval (docs/signals.md, "Speed"); a loaded machine starts them slower.
PARALLEL_INTERVALS = 50_000


def study_table(
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    *,
    window_s: float | None = None,
    slo: object | Mapping[str, float] | None = None,
    service: str | None = None,
    candidates: Collection[tuple[str, str]] | None = None,
    workers: int | None = None,
) -> pl.DataFrame:
    """Describe every candidate signal against its role's offered load, one row per candidate.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table.
    service_load : pl.DataFrame
        The canonical ``service_load`` table, joined to the role series on (ts, service).
    window_s : float, optional
        Judge signals over windows of this length (:func:`signals.resample`), e.g. the
        controller's period; by default at the sampling interval.
    slo : object or mapping, optional
        The latency SLO, with ``ttft_p99_s`` and ``tbt_p99_s`` as attributes (e.g.
        ``policies.ServiceSLO``) or keys; gives each row a ``breach_auc``.
    service : str, optional
        Study this service only; by default every service.
    candidates : collection of (role, signal), optional
        Describe these only (e.g. one signal checked for drift); by default every signal of
        :data:`signals.SIGNALS` on every role.
    workers : int, optional
        Processes to describe the candidates in; by default one for a study of fewer than
        :data:`PARALLEL_INTERVALS` intervals over all candidates, else one per CPU. A
        candidate's statistics depend on its own series and seeds only, so every number of
        workers gives the same table.

    Returns
    -------
    pl.DataFrame
        One row per candidate (service, role, gpu_type, signal), sorted by those keys with the
        role-level row (``gpu_type`` null) first, holding

        - ``load_column``: the offered load the candidate is judged against (``ROLE_LOAD``);
        - ``load_dynamic_range``: that load's own :func:`signals.statistics.dynamic_range`,
          what a signal proportional to it would show;
        - ``dropped_intervals``: intervals left out because the signal or the load was null;
        - every column of ``describe(load, signal, breach=...).as_row()``.

    Raises
    ------
    ValueError
        If no interval of the role series matches an interval of ``service_load``.

    Notes
    -----
    ``gpu_type`` is null on the row of the whole role. A role whose instances run on several
    GPU types also gets a row per type, aggregated like the role (:func:`signals.role_series`
    on that type's instances alone).

    :func:`signals.describe` refuses non-finite values, and the canonical tables hold none, but
    a signal can be null in an interval (a latency with no sample, a gauge the source does
    not export) and so can the load. Those intervals are dropped before ``describe``; the
    statistics then see a series with gaps, so lags and bootstrap blocks may span one. A
    candidate is skipped, with its reason logged at INFO on this module's logger, when it has
    no value at all (TTFT on decode), when fewer than :data:`MIN_CANDIDATE_INTERVALS`
    intervals remain, or when the load it is judged against is constant there. A candidate
    with fewer than ``MIN_CANDIDATE_INTERVALS + MAX_LAG`` intervals tries lags up to what its
    length allows.

    With an SLO, an interval is a breach when the role's p99 latency (the quantiles of
    :data:`ROLE_LATENCY`, averaged over ready instances as :func:`signals.role_series` does) is
    above its SLO; an interval without a latency sample is no breach. Every row of a role,
    per GPU type too, is scored against the role's breaches: the SLO is the role's.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.2, the metrics-driven scaling study.
    """
    paired = paired_series(instance_samples, service_load, window_s=window_s, service=service)
    if slo is not None:
        paired = paired.join(_role_breaches(paired, slo), on=["ts", "service", "role"])

    keys, jobs, skipped = [], [], []
    for (service_name, role, gpu_type), group in paired.group_by(SERIES_BY, maintain_order=True):
        group = group.sort("ts")
        load_column = ROLE_LOAD[role]
        for signal in SIGNALS:
            if candidates is not None and (role, signal) not in candidates:
                continue
            present = group.filter(pl.col(signal).is_not_null() & pl.col(load_column).is_not_null())
            x, y = present[load_column].to_numpy(), present[signal].to_numpy()
            reason = _skip_reason(group[signal].null_count() == group.height, x)
            if reason:
                skipped.append(f"{service_name}/{role}/{gpu_type or 'all'}/{signal} ({reason})")
                continue
            breach = present["breach"].to_numpy() if slo is not None else None
            keys.append(
                {
                    "service": service_name,
                    "role": role,
                    "gpu_type": gpu_type,
                    "signal": signal,
                    "load_column": load_column,
                    "load_dynamic_range": dynamic_range(x, x),
                    "dropped_intervals": group.height - present.height,
                }
            )
            jobs.append((x, y, breach, min(MAX_LAG, x.size - MIN_CANDIDATE_INTERVALS)))
    if skipped:
        logger.info("study_table: skipped %d candidates: %s", len(skipped), "; ".join(skipped))
    if not jobs:
        raise ValueError("study_table: no candidate could be described (see the skipped ones)")
    descriptions = _describe_all(jobs, _workers(jobs) if workers is None else workers)
    rows = [{**key, **found.as_row()} for key, found in zip(keys, descriptions, strict=True)]
    return pl.DataFrame(rows, infer_schema_length=None).sort(*CANDIDATE_KEY)


#: One candidate for :func:`signals.describe`: load, signal, breaches (or None) and max lag.
_Job = tuple[np.ndarray, np.ndarray, np.ndarray | None, int]


def _workers(jobs: list[_Job]) -> int:
    """Processes to describe ``jobs`` in: one for a small study, else one per CPU (at most
    one per job); :data:`PARALLEL_INTERVALS` says where a second process starts to pay."""
    if sum(job[0].size for job in jobs) < PARALLEL_INTERVALS:
        return 1
    return min(len(os.sched_getaffinity(0)), len(jobs))


def _describe_all(jobs: list[_Job], workers: int) -> list[Description]:
    """:func:`signals.describe` of every job, in order, over ``workers`` processes.

    Each process runs one BLAS thread: the study's matrices are too small to keep a second
    one busy, and OpenBLAS's threads spin while they wait (in one process on the bench's
    week, two threads took 50 CPU-s and more wall time than one thread's 32). joblib gives
    each of its workers cores / workers threads. Its workers are fresh processes, not forks
    of this one (which runs polars' thread pool), and unlike ``multiprocessing``'s spawned
    ones they do not re-run the caller's main script; it keeps them for the next call.
    """
    if workers == 1:
        with threadpool_limits(limits=1, user_api="blas"):
            return [_describe(job) for job in jobs]
    return Parallel(n_jobs=workers)(delayed(_describe)(job) for job in jobs)


def _describe(job: _Job) -> Description:
    x, y, breach, max_lag = job
    return describe(x, y, breach=breach, max_lag=max_lag)


def paired_series(
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    *,
    window_s: float | None = None,
    service: str | None = None,
) -> pl.DataFrame:
    """Every candidate's series beside the offered load, per interval: what :func:`study_table`
    describes, and what a figure of a signal against its load plots.

    Returns
    -------
    pl.DataFrame
        One row per (ts, service, role, gpu_type) (``gpu_type`` null for the whole role, see
        :func:`study_table`): the role series' columns and ``service_load``'s load columns,
        over the intervals both cover, resampled to ``window_s`` when given.

    Raises
    ------
    ValueError
        If no interval of the role series matches an interval of ``service_load``.
    """
    samples = conform(instance_samples, INSTANCE_SAMPLES)
    load = conform(service_load, SERVICE_LOAD)
    if service is not None:
        samples = samples.filter(pl.col("service") == service)
        load = load.filter(pl.col("service") == service)
    series = _candidate_series(samples)
    if window_s is not None:
        series = resample(series, window_s, SERIES_BY)
        load = resample(load, window_s, ("service",))
    paired = series.join(load.drop("interval_s"), on=["ts", "service"], how="inner")
    if paired.is_empty():
        raise ValueError("no (ts, service) of instance_samples matches a row of service_load")
    return paired


def _candidate_series(instance_samples: pl.DataFrame) -> pl.DataFrame:
    """Role series per (ts, service, role, gpu_type): the whole role, and each GPU type of a
    role that runs several.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table.

    Returns
    -------
    pl.DataFrame
        :func:`signals.role_series`'s columns with ``gpu_type`` after ``role``: null on the
        rows of a whole role, the type on the rows aggregated over that type's instances.
    """
    whole = role_series(instance_samples).with_columns(gpu_type=pl.lit(None, pl.String))
    mixed = (
        instance_samples.group_by("service", "role")
        .agg(pl.col("gpu_type").n_unique().alias("types"))
        .filter(pl.col("types") > 1)
        .drop("types")
    )
    in_mixed = instance_samples.join(mixed, on=["service", "role"], how="semi")
    per_type = [
        role_series(in_mixed.filter(pl.col("gpu_type") == gpu_type)).with_columns(
            gpu_type=pl.lit(gpu_type)
        )
        for gpu_type in sorted(in_mixed["gpu_type"].unique())
    ]
    values = [c for c in whole.columns if c not in ("ts", *SERIES_BY)]
    return pl.concat([whole, *per_type]).select("ts", *SERIES_BY, *values)


def target_from_data(
    instance_samples: pl.DataFrame,
    slo: object | Mapping[str, float],
    *,
    service: str,
    role: str,
    signal: str,
    window_s: float | None = None,
) -> float | None:
    """The per-instance value of ``signal`` at which the role's latency reaches its SLO, read
    from the data, or None when the data never came close enough to show it.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table.
    slo : object or mapping
        The latency SLO, with ``ttft_p99_s`` and ``tbt_p99_s`` as attributes or keys.
    service, role, signal : str
        The candidate; the whole role (every GPU type).
    window_s : float, optional
        The windows the signal is judged over (as in :func:`study_table`).

    Returns
    -------
    float or None
        The highest per-ready-instance value of the signal over the intervals whose latency
        quantiles (:data:`ROLE_LATENCY`) were all within the SLO; None when no interval's
        latency came within :data:`NEAR_SLO` of its SLO, or none was within it.

    Notes
    -----
    A proportional controller sizes the pool as ``signal / target``, so the target is what
    one instance can carry within the SLO. Throughputs (:data:`signals.SUM_SIGNALS`) are the
    pool's total and are divided by the ready instances; the other signals are already a
    per-instance average. Only data that came near the SLO brackets the crossing: the busiest
    interval within the SLO then sits just below it. Data that stayed far below says nothing
    about where the SLO breaks, and the target must come from a pressure test instead.
    """
    samples = conform(instance_samples, INSTANCE_SAMPLES).filter(
        (pl.col("service") == service) & (pl.col("role") == role)
    )
    series = role_series(samples)
    if window_s is not None:
        series = resample(series, window_s, ("service", "role"))
    limits = _limits(slo, role)
    per_instance = (
        pl.col(signal) / pl.col("ready_instances") if signal in SUM_SIGNALS else pl.col(signal)
    )
    series = series.with_columns(value=per_instance).filter(pl.col("value").is_finite())
    near = pl.any_horizontal(pl.col(c) >= (1 - NEAR_SLO) * limit for c, limit in limits.items())
    if not series.select(near.any()).item():
        return None
    within = pl.all_horizontal(pl.col(c).fill_null(0.0) <= limit for c, limit in limits.items())
    return series.filter(within)["value"].max()


def _role_breaches(paired: pl.DataFrame, slo: object | Mapping[str, float]) -> pl.DataFrame:
    """Per (ts, service, role), whether the whole role's latency was above its SLO."""
    roles = paired.filter(pl.col("gpu_type").is_null())
    return pl.concat(
        [
            roles.filter(pl.col("role") == role).select(
                "ts",
                "service",
                "role",
                breach=pl.any_horizontal(
                    (pl.col(c) > limit).fill_null(False) for c, limit in _limits(slo, role).items()
                ),
            )
            for role in roles["role"].unique(maintain_order=True)
        ]
    )


def _limits(slo: object | Mapping[str, float], role: str) -> dict[str, float]:
    """The SLO's limit on each latency quantile ``role`` is held to."""
    if isinstance(slo, Mapping):
        return {c: float(slo[c]) for c in ROLE_LATENCY[role]}
    return {c: float(getattr(slo, c)) for c in ROLE_LATENCY[role]}


def _skip_reason(no_values: bool, load: np.ndarray) -> str:
    """Why a candidate cannot be described, or "" when it can."""
    if no_values:
        return "no values"
    if load.size < MIN_CANDIDATE_INTERVALS:
        return f"{load.size} intervals with a value, fewer than {MIN_CANDIDATE_INTERVALS}"
    if is_constant(load):
        return "offered load constant where the signal has values"
    return ""


def run_study(
    instance_samples: pl.DataFrame,
    service_load: pl.DataFrame,
    *,
    service: str,
    window_s: float | None,
    slo: object | Mapping[str, float],
    pressure_targets: Mapping[tuple[str, str, str], float] | None = None,
) -> tuple[pl.DataFrame, dict | None]:
    """The whole study of one service: every candidate classed and ranked, and the
    recommendation with its target.

    Parameters
    ----------
    instance_samples, service_load : pl.DataFrame
        The service's canonical telemetry.
    service : str
    window_s : float or None
        Judge signals over windows of this length.
    slo : object or mapping
        ``ttft_p99_s`` and ``tbt_p99_s``.
    pressure_targets : mapping, optional
        ``(service, role, signal) -> per-instance target`` from a pressure test (the policy's
        curation), used where the data never neared the SLO.

    Returns
    -------
    tuple
        :func:`signals.classify` of :func:`study_table`, sorted by rank, and
        :func:`signals.recommend`'s recommendation (None when nothing is proportional).
    """
    samples = instance_samples.filter(pl.col("service") == service)
    load = service_load.filter(pl.col("service") == service)
    table = classify(study_table(samples, load, window_s=window_s, slo=slo)).sort("rank")
    observed = {}
    whole_role = table.filter((pl.col("class") == "proportional") & pl.col("gpu_type").is_null())
    for role, signal in whole_role.select("role", "signal").iter_rows():
        target = target_from_data(
            samples, slo, service=service, role=role, signal=signal, window_s=window_s
        )
        if target is not None:
            observed[(service, role, signal)] = target
    return table, recommend(table, observed_targets=observed, pressure_targets=pressure_targets)
