"""Jobs: the main job from trace to dashboard, and the ingest job for a user's telemetry."""

import dagster as dg

from pipelines.assets.ingest import INGEST_GROUP, INGEST_LOG_KEY

#: Trace -> telemetry -> signal scores -> scaling decisions -> placement -> dashboard.
heteroscale_job = dg.define_asset_job(
    "heteroscale_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(INGEST_GROUP),
    description=(
        "The end-to-end study on the scenario (embedded default: ServeGen m-large's real days)."
    ),
    # DuckDB is single-writer: run the steps one after another in one process.
    executor_def=dg.in_process_executor,
)

#: Files or a Prometheus into the store; run by hand or by the inbox sensor.
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(INGEST_LOG_KEY),
    description="Load telemetry sources into the store (docs/ingest.md).",
    executor_def=dg.in_process_executor,
)
