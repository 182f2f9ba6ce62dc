"""A per-instance decode TPS target read off recorded telemetry."""

from __future__ import annotations

import polars as pl

from signals import role_series


def target_from_telemetry(
    instance_samples: pl.DataFrame, tbt_slo_s: float, *, service: str
) -> float:
    """Highest decode TPS per ready decode instance seen while decode TBT p99 met the SLO.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        The canonical ``instance_samples`` table; aggregated with :func:`signals.role_series`.
    tbt_slo_s : float
        The time-between-tokens SLO on p99, in seconds.
    service : str
        The service whose decode pool is measured.

    Returns
    -------
    float
        ``max(decode_tps / ready_instances)`` over the decode intervals with at least one ready
        instance and ``tbt_p99_s <= tbt_slo_s``, in tokens/s per instance.

    Raises
    ------
    ValueError
        If ``tbt_slo_s`` is not positive, or no decode interval of the service met the SLO.

    Notes
    -----
    A first stand-in for the paper's pressure test (Algorithm 1), which drives a service to its
    SLO on purpose to find the load one instance sustains. Recorded telemetry only shows the
    loads that happened: when the run never came near the SLO the result is the run's peak,
    a lower bound on the instance's capacity. ``tbt_p99_s`` is the mean over ready instances
    of their p99 (:func:`signals.role_series`), so one slow instance can hide in the mean.
    Intervals without any TBT value carry no evidence and are left out.

    References
    ----------
    HeteroScale (arXiv 2508.19559) §5.3.5 (Algorithm 1, workload-centric policy curation).
    """
    if not tbt_slo_s > 0:
        raise ValueError(f"tbt_slo_s must be > 0, got {tbt_slo_s}")
    within_slo = role_series(instance_samples).filter(
        (pl.col("service") == service)
        & (pl.col("role") == "decode")
        & (pl.col("ready_instances") > 0)
        & (pl.col("tbt_p99_s") <= tbt_slo_s)
    )
    if within_slo.is_empty():
        raise ValueError(
            f"no decode interval of service {service!r} has a ready instance and "
            f"tbt_p99_s <= {tbt_slo_s} s"
        )
    return float((within_slo["decode_tps"] / within_slo["ready_instances"]).max())
