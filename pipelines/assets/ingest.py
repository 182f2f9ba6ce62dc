"""Ingestion assets: load telemetry files, directories or a Prometheus into the store.

The work is :func:`telemetry.ingest.ingest`; this module only binds it to the store resource,
takes the sources from run config (the inbox sensor fills it in) and checks the row accounting.
"""

import dagster as dg

from pipelines.resources import StoreResource
from telemetry.ingest import INGEST_LOG, QUARANTINE, IngestError, ingest, load_mapping

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
)
def ingest_log(context: dg.AssetExecutionContext, config: IngestConfig, store: StoreResource):
    """Load ``config.sources``; fails the run when nothing could be loaded."""
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
    return dg.MaterializeResult(
        metadata={
            "rows_read": report.rows_read,
            "rows_loaded": report.rows_loaded,
            "rows_quarantined": report.rows_quarantined,
            "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
            "partitions": len(report.partitions),
        }
    )


@dg.asset_check(asset=INGEST_LOG_KEY, blocking=True)
def ingest_log_rows_accounted_for(store: StoreResource):
    """Every row read was loaded or quarantined, in every load the log holds."""
    log = store.read(INGEST_LOG)
    broken = log.filter(log["rows_read"] != log["rows_loaded"] + log["rows_quarantined"])
    quarantined = store.store().row_counts().get(QUARANTINE, 0)
    return dg.AssetCheckResult(
        passed=log.height > 0 and broken.height == 0,
        metadata={
            "loads": log.height,
            "loads_not_adding_up": broken.height,
            "quarantine_rows": quarantined,
        },
    )
