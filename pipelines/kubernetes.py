"""The code location of a Kubernetes deployment (docs/operations.md, "Kubernetes"): the same
assets, jobs, schedules and sensors as :mod:`pipelines.definitions`, bound to the environment
the same way, with each step of a run in a Kubernetes Job of its own, so the curation sweep
spreads over the cluster. Served by the code server as ``-m pipelines.kubernetes``."""

from pipelines.definitions import environment_definitions
from pipelines.executors import kubernetes

defs = environment_definitions(kubernetes())
