"""Schedules: yesterday's telemetry every night, then the policy re-derived from it.

Both are off until switched on in the UI (or ``dg`` CLI): on the embedded default there is no
live telemetry to load, so a schedule that runs by itself would only fail.
"""

import dagster as dg

from pipelines.assets.signals import SIGNAL_STUDY_KEY
from pipelines.assets.telemetry import TELEMETRY_KEYS
from pipelines.jobs import policy_job, telemetry_job
from pipelines.partitions import INGEST_CRON_HOUR, POLICY_REFRESH_CRON
from pipelines.resources import StoreResource
from telemetry.schema import SERVICE_LOAD

#: Loads yesterday's partition from ``HETEROSCALE_SOURCES`` at 01:00 UTC.
daily_telemetry_schedule = dg.build_schedule_from_partitioned_job(
    telemetry_job, hour_of_day=INGEST_CRON_HOUR, name="daily_telemetry_schedule"
)


def new_telemetry_days(instance: dg.DagsterInstance) -> tuple[int, list[str]]:
    """The telemetry day partitions materialised since the study last was, however they came
    (the telemetry job, a backfill, the inbox), and the newest event's storage id (0: none)."""
    study = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SIGNAL_STUDY_KEY), limit=1
    ).records
    since = study[0].storage_id if study else 0
    newest, days = 0, set()
    for key in TELEMETRY_KEYS:
        cursor = None
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=since),
                limit=1000,
                cursor=cursor,
            )
            for record in page.records:
                newest = max(newest, record.storage_id)
                days.add(record.partition_key)
            if not page.has_more:
                break
            cursor = page.cursor
    return newest, sorted(d for d in days if d)


@dg.schedule(
    job=policy_job,
    cron_schedule=POLICY_REFRESH_CRON,
    execution_timezone="UTC",
    description=(
        "Every morning, re-run the study, curation, backtest, gate, placement and report of "
        "each service, on the offered load the store recorded, when telemetry days arrived "
        "since the last study."
    ),
)
def daily_policy_schedule(context: dg.ScheduleEvaluationContext, store: StoreResource):
    """One run per service per batch of new telemetry days, curated and backtested on the
    offered load the store recorded for it: the run key is the newest telemetry event and the
    service, so a day that brought nothing new asks for nothing, and a failed refresh is not
    repeated until more telemetry arrives."""
    newest, days = new_telemetry_days(context.instance)
    if not days:
        return dg.SkipReason("no telemetry day materialised since the last signal study")
    offered = store.store().distinct(SERVICE_LOAD, ["service"])
    if offered is None or offered.is_empty():
        return dg.SkipReason(
            f"telemetry days {days[0]}..{days[-1]} arrived, but the store records no offered "
            "load (service_load) to curate a policy on: ingest the router's or frontend's "
            "request counters too (docs/ingest.md)"
        )
    return [
        dg.RunRequest(
            run_key=f"telemetry-{newest}-{service}",
            run_config={
                "resources": {
                    "scenario": {"config": {"service": service, "fleet_from_store": True}}
                }
            },
            tags={
                "heteroscale/new_days": f"{days[0]}..{days[-1]} ({len(days)})",
                "heteroscale/service": service,
            },
        )
        for service in sorted(offered["service"])
    ]
