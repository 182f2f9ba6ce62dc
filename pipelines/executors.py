"""How a job's steps run: in processes of their own on one machine, or in Kubernetes pods.

Either way the steps that open the store run one at a time: DuckDB lets one process at a time
hold a file open to write (:data:`pipelines.resources.STORE_STEP`). The curation sweep's steps
open no store, so they run beside each other and beside a store step. A step's outputs reach
the next through the instance's storage folder, which a Kubernetes deployment puts on the
store's shared volume (deploy/k8s/dagster.yaml).
"""

from __future__ import annotations

import dagster as dg

from pipelines.resources import STORE_STEP

#: One step tagged as opening the store at a time.
STORE_LIMIT = [{"key": key, "value": value, "limit": 1} for key, value in STORE_STEP.items()]


def multiprocess_config(max_concurrent: int = 0) -> dict:
    """Dagster's multiprocess executor: ``max_concurrent`` steps at once (0: one per core),
    each forked from a server that imported the code once (``forkserver``)."""
    return {
        "max_concurrent": max_concurrent,
        "tag_concurrency_limits": STORE_LIMIT,
        "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}},
    }


#: dagster-k8s's executor: each step in a Kubernetes Job of its own, with the run launcher's
#: image, settings and volumes, as many at once as the run has ready steps.
KUBERNETES_CONFIG = {"tag_concurrency_limits": STORE_LIMIT}


def multiprocess(max_concurrent: int = 0) -> dg.ExecutorDefinition:
    """Steps in processes of their own on this machine (:func:`multiprocess_config`)."""
    return dg.multiprocess_executor.configured(
        multiprocess_config(max_concurrent), name="multiprocess"
    )


def kubernetes() -> dg.ExecutorDefinition:
    """Steps in Kubernetes pods (:data:`KUBERNETES_CONFIG`)."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(KUBERNETES_CONFIG, name="kubernetes")
