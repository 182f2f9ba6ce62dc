"""Jobs: the main job from trace to dashboard, the telemetry job that fills day partitions, the
policy job that re-derives everything from the stored telemetry, and the ingest job.

Their steps run on the code location's executor (:mod:`pipelines.executors`: processes of their
own, or Kubernetes pods), except the ingest job's, which run in the run's own process.
"""

import dagster as dg

from pipelines.assets.ingest import INGEST_GROUP, INGEST_LOG_KEY
from pipelines.assets.telemetry import (
    REQUEST_OUTCOMES_KEY,
    TELEMETRY_FRESHNESS_CHECKS,
    TELEMETRY_KEYS,
)

_TELEMETRY = dg.AssetSelection.assets(*TELEMETRY_KEYS, REQUEST_OUTCOMES_KEY)
#: Freshness checks are about time passing, not about a run: their sensor evaluates them.
_FRESHNESS = dg.AssetSelection.checks(*TELEMETRY_FRESHNESS_CHECKS)
_EVERYTHING = dg.AssetSelection.all() - dg.AssetSelection.groups(INGEST_GROUP) - _FRESHNESS

#: Trace -> telemetry -> signal scores -> scaling decisions -> placement -> dashboard, for the
#: day partition the scenario's trace covers (``pipelines.run`` picks it).
heteroscale_job = dg.define_asset_job(
    "heteroscale_job",
    selection=_EVERYTHING,
    description=(
        "The end-to-end study on the scenario (embedded default: ServeGen m-large's real days); "
        "run it for the day the scenario's trace starts on (2024-01-01 for the default)."
    ),
)

#: One day of canonical telemetry from the configured source; the ingestion schedule runs it
#: for yesterday, a backfill for any range of days.
telemetry_job = dg.define_asset_job(
    "telemetry_job",
    selection=_TELEMETRY - _FRESHNESS,
    description="Load (or simulate) one UTC day of canonical telemetry into the store.",
)

#: Study, curation, backtest, the publication gate, placement and report on the stored
#: telemetry of every day loaded so far; the daily policy schedule runs it after new days.
policy_job = dg.define_asset_job(
    "policy_job",
    selection=_EVERYTHING - _TELEMETRY,
    description=(
        "Re-run the signal study, curation, backtest, publication gate, placement and report "
        "on the telemetry in the store."
    ),
)

#: Files or a Prometheus into the store; run by hand or by the inbox sensor.
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(INGEST_LOG_KEY),
    description="Load telemetry sources into the store (docs/ingest.md).",
    # One step and its check, both on the store: nothing to spread.
    executor_def=dg.in_process_executor,
)
