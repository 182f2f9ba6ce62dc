"""Jobs: the main job materialises the whole path from trace to dashboard."""

import dagster as dg

#: Trace -> telemetry -> signal scores -> scaling decisions -> placement -> dashboard.
heteroscale_job = dg.define_asset_job(
    "heteroscale_job",
    selection=dg.AssetSelection.all(),
    description="The end-to-end study on the scenario's trace (embedded default: Azure 2023).",
    # DuckDB is single-writer: run the steps one after another in one process.
    executor_def=dg.in_process_executor,
)
