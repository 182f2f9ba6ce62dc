"""What a recorded run deployed, read back as policy and placement inputs.

Until the pressure test (Algorithm 1) exists, the deployment an operator chose is the best
evidence of the P/D ratio to keep and of the hardware each role needs.
"""

from __future__ import annotations

import polars as pl

from scheduler import RoleRequirements, ServiceRequirements


def _instances_by_role(instance_samples: pl.DataFrame, service: str) -> pl.DataFrame:
    """One row per role: distinct instances, the GPU types they ran on (most instances first)
    and the most GPUs any of them took."""
    by_role = (
        instance_samples.filter(pl.col("service") == service)
        .group_by("role", "gpu_type")
        .agg(instances=pl.col("instance_id").n_unique(), gpus=pl.col("gpus_per_instance").max())
        .sort("role", "instances", "gpu_type", descending=[False, True, False])
        .group_by("role", maintain_order=True)
        .agg(
            pl.col("instances").sum(),
            gpu_types=pl.col("gpu_type"),
            gpus_per_instance=pl.col("gpus").max(),
        )
    )
    missing = {"prefill", "decode"} - set(by_role["role"])
    if missing:
        raise ValueError(
            f"service {service!r} needs prefill and decode instances; it has no {sorted(missing)}"
        )
    return by_role


def deployed_pd_ratio(instance_samples: pl.DataFrame, *, service: str) -> float:
    """Prefill instances per decode instance as deployed in the recorded run.

    Returns
    -------
    float
        Distinct prefill instances / distinct decode instances of ``service``.

    Raises
    ------
    ValueError
        If the run has no prefill or no decode instance of the service.

    Notes
    -----
    A stand-in for the P/D ratio the paper finds by pressure test (r_opt of Algorithm 1): the
    operator's deployed split is taken as the ratio to keep until that test exists.
    """
    by_role = _instances_by_role(instance_samples, service)
    counts = dict(by_role.select("role", "instances").iter_rows())
    return counts["prefill"] / counts["decode"]


def deployed_requirements(
    instance_samples: pl.DataFrame, *, service: str, affinity: str = "s2"
) -> ServiceRequirements:
    """The placement needs of ``service`` as its recorded run deployed it.

    Each role prefers the GPU type most of its instances ran on, falls back to the others it
    ran on, and takes the GPUs per instance it used; the group keeps the deployed P/D ratio.
    ``affinity`` defaults to one S2 switch per Deployment Group, the paper's usual domain
    (§5.4.2).
    """
    roles = {
        row["role"]: RoleRequirements(
            preferred_gpu_type=row["gpu_types"][0],
            fallback_gpu_types=tuple(row["gpu_types"][1:]),
            gpus_per_instance=row["gpus_per_instance"],
        )
        for row in _instances_by_role(instance_samples, service).iter_rows(named=True)
    }
    return ServiceRequirements(
        prefill=roles["prefill"],
        decode=roles["decode"],
        affinity=affinity,
        pd_ratio=deployed_pd_ratio(instance_samples, service=service),
    )
