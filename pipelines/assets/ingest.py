"""Ingestion assets: load telemetry files, directories or a Prometheus into the store.

The work is :func:`telemetry.ingest.ingest`; this module only binds it to the store resource,
takes the sources from run config (the inbox sensor fills it in) and checks the row accounting.
A load writes whole service x day partitions of the canonical telemetry, so it reports each day
it wrote as a materialisation of that day's telemetry partition: the UI shows the day as
loaded, and the daily policy schedule sees it as new telemetry.

A code location whose telemetry is simulated (``HETEROSCALE_SOURCES=simulator``) keeps what it
ingests apart, in ``ingested/`` beside its store, and reports no telemetry partition for it:
those assets are the simulation's (docs/operations.md, "Stores").
"""

import dagster as dg
import polars as pl

from pipelines.assets.telemetry import TELEMETRY_KEYS, per_day
from pipelines.metadata import ROW_COUNT
from pipelines.partitions import TELEMETRY_DAYS
from pipelines.resources import STORE_STEP, StoreResource, TelemetrySourceResource
from telemetry.ingest import INGEST_LOG, QUARANTINE, IngestError, LoadReport, ingest, load_mapping

INGEST_LOG_KEY = dg.AssetKey(["telemetry", INGEST_LOG])
#: Asset group of ingestion, which the main job leaves out (it needs run config).
INGEST_GROUP = "ingest"


class IngestConfig(dg.Config):
    """What to load: files, directories or ``prometheus+http://host:port`` URLs."""

    sources: list[str]
    service: str | None = None
    mapping: str | None = None
    interval_s: float | None = None


@dg.asset(
    key=INGEST_LOG_KEY,
    group_name=INGEST_GROUP,
    description=(
        "One row per load (rows read, loaded, quarantined). Materialising it replaces the "
        "service x day partitions of instance_samples and service_load its sources cover and "
        "writes their quarantine rows (docs/ingest.md)."
    ),
    op_tags=STORE_STEP,
)
def ingest_log(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    store: StoreResource,
    source: TelemetrySourceResource,
):
    """Load ``config.sources``; fails the run when nothing could be loaded."""
    store = ingest_store(store, source)
    try:
        report = ingest(
            config.sources,
            store.store(),
            mapping=load_mapping(config.mapping),
            service=config.service,
            interval_s=config.interval_s,
        )
    except IngestError as exc:
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(
        f"read {report.rows_read:,} rows: loaded {report.rows_loaded:,}, "
        f"quarantined {report.rows_quarantined:,} {report.quarantine_reasons}"
    )
    if not source.simulated:
        for event in telemetry_partitions_written(report):
            context.log_event(event)
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: dg.MetadataValue.int(store.store().row_counts()[INGEST_LOG]),
            "store": dg.MetadataValue.path(store.db_path),
            "rows_read": dg.MetadataValue.int(report.rows_read),
            "rows_loaded": dg.MetadataValue.int(report.rows_loaded),
            "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
            "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
            "partitions": dg.MetadataValue.int(len(report.partitions)),
        }
    )


def ingest_store(store: StoreResource, source: TelemetrySourceResource) -> StoreResource:
    """The store a load goes to: the code location's, unless it holds a simulation."""
    return store.ingested() if source.simulated else store


def telemetry_partitions_written(report: LoadReport) -> list[dg.AssetMaterialization]:
    """One materialisation per telemetry asset and UTC day the load wrote, with its rows.

    A day outside the partitions (before ``TELEMETRY_START``, or today, still being filled)
    is in the store but has no Dagster partition to report.
    """
    keys = {key.path[-1]: key for key in TELEMETRY_KEYS}
    return [
        dg.AssetMaterialization(
            asset_key=keys[table],
            partition=day,
            description="written by ingest_job",
            metadata={
                ROW_COUNT: dg.MetadataValue.int(rows),
                "services": dg.MetadataValue.text(services),
            },
        )
        for table, day, rows, services in per_day(report)
        if table in keys and TELEMETRY_DAYS.has_partition_key(day)
    ]


@dg.asset_check(asset=INGEST_LOG_KEY, blocking=True, op_tags=STORE_STEP)
def ingest_log_rows_accounted_for(store: StoreResource, source: TelemetrySourceResource):
    """Every row read was loaded, skipped (a series the schema does not use) or quarantined,
    in every load the log holds (loads logged before skipping existed skipped nothing)."""
    store = ingest_store(store, source)
    log = store.read(INGEST_LOG)
    skipped = pl.col("rows_skipped").fill_null(0) if "rows_skipped" in log.columns else 0
    broken = log.filter(
        pl.col("rows_read") != pl.col("rows_loaded") + skipped + pl.col("rows_quarantined")
    )
    quarantined = store.store().row_counts().get(QUARANTINE, 0)
    return dg.AssetCheckResult(
        passed=log.height > 0 and broken.height == 0,
        metadata={
            "loads": dg.MetadataValue.int(log.height),
            "loads_not_adding_up": dg.MetadataValue.int(broken.height),
            "quarantine_rows": dg.MetadataValue.int(quarantined),
        },
    )
