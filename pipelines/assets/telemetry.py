"""Telemetry assets: the canonical telemetry, one Dagster partition per UTC day.

The source is a resource, not a second asset: the embedded default simulates the scenario's
trace (the day it starts on), a deployment's ``HETEROSCALE_SOURCES`` loads the partition's day
from a Prometheus or Parquet tables. Either way the rows land in the store's service x day
partitions, so every downstream asset reads the same tables whatever the source.
"""

import warnings
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import polars as pl

from pipelines.metadata import ROW_COUNT
from pipelines.partitions import DAILY_DEADLINE_CRON, TELEMETRY_DAYS
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource, TelemetrySourceResource
from simulator import simulate
from simulator.persist import REQUEST_OUTCOMES, write_result
from telemetry.gaps import gaps
from telemetry.ingest import IngestError, LoadReport, ingest
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

INSTANCE_SAMPLES_KEY = dg.AssetKey(["telemetry", INSTANCE_SAMPLES])
SERVICE_LOAD_KEY = dg.AssetKey(["telemetry", SERVICE_LOAD])
REQUEST_OUTCOMES_KEY = dg.AssetKey(["telemetry", REQUEST_OUTCOMES])
TELEMETRY_KEYS = (INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            INSTANCE_SAMPLES_KEY,
            group_name="telemetry",
            description="Per-instance samples in the canonical schema (docs/telemetry-schema.md).",
        ),
        dg.AssetSpec(
            SERVICE_LOAD_KEY,
            group_name="telemetry",
            description="Offered load of the service per interval: the ground truth for signals.",
        ),
        dg.AssetSpec(
            REQUEST_OUTCOMES_KEY,
            group_name="telemetry",
            skippable=True,
            description="Per-request outcome of a simulated run (arrival, TTFT, finish).",
        ),
    ],
    partitions_def=TELEMETRY_DAYS,
    op_tags=STORE_STEP,
)
def canonical_telemetry(
    context: dg.AssetExecutionContext,
    scenario: ScenarioResource,
    source: TelemetrySourceResource,
    store: StoreResource,
):
    """Fill the partition's day: simulate the scenario, or load the day from the sources."""
    day = date.fromisoformat(context.partition_key)
    if source.simulated:
        yield from _simulated(context, scenario, store, day)
    else:
        yield from _loaded(context, source, store, day)


def _simulated(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource, day: date
):
    """Replay the scenario's requests through its P/D cluster. Its trace fixes the day, so
    another partition is refused rather than filled with the wrong day's load."""
    trace = scenario.trace()
    if scenario.trace_day() != day:
        raise dg.Failure(
            description=(
                f"the simulator replays {scenario.describe_trace()}, which starts on "
                f"{scenario.trace_day()}, not {day}: materialise that day's partition, or set "
                "HETEROSCALE_SOURCES to load this day from your telemetry"
            )
        )
    cluster = scenario.cluster()
    context.log.info(
        f"simulating {trace.requests.height:,} requests of {scenario.describe_trace()} "
        f"on {cluster.describe()}"
    )
    result = simulate(
        trace.requests,
        cluster,
        service=scenario.service,
        start=trace.start,
        interval_s=scenario.interval_s,
    )
    rows = write_result(store.store(), result, service=scenario.service)
    yield dg.MaterializeResult(
        asset_key=INSTANCE_SAMPLES_KEY,
        metadata={
            ROW_COUNT: dg.MetadataValue.int(rows[INSTANCE_SAMPLES]),
            "instances": dg.MetadataValue.int(result.instance_samples["instance_id"].n_unique()),
            "source": dg.MetadataValue.text(scenario.describe_trace()),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SERVICE_LOAD_KEY,
        metadata={ROW_COUNT: dg.MetadataValue.int(rows[SERVICE_LOAD])},
    )
    yield dg.MaterializeResult(
        asset_key=REQUEST_OUTCOMES_KEY,
        metadata={ROW_COUNT: dg.MetadataValue.int(rows[REQUEST_OUTCOMES])},
    )


def _loaded(
    context: dg.AssetExecutionContext,
    source: TelemetrySourceResource,
    store: StoreResource,
    day: date,
):
    """Load one UTC day of every source: a Prometheus over the day's intervals, a Parquet
    table's rows of that day (telemetry.ingest). Replaces the day's service partitions."""
    start = datetime.combine(day, time(), UTC)
    sources = source.source_list()
    context.log.info(f"loading {day} from {len(sources)} source(s)")
    try:
        report = ingest(
            sources,
            store.store(),
            mapping=source.load_mapping(),
            start=start,
            end=start + timedelta(days=1),
            day=day,
        )
    except IngestError as exc:
        raise dg.Failure(description=str(exc)) from exc
    written = {(table, day): (rows, services) for table, day, rows, services in per_day(report)}
    for key in TELEMETRY_KEYS:
        rows, services = written.get((key.path[-1], day.isoformat()), (0, ""))
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                ROW_COUNT: dg.MetadataValue.int(rows),
                "services": dg.MetadataValue.text(services),
                "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
                "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
            },
        )


def per_day(report: LoadReport) -> list[tuple[str, str, int, str]]:
    """(table, UTC day, rows, services) of each telemetry table and day a load wrote."""
    written = pl.DataFrame(
        report.partitions,
        schema={"table": pl.String, "service": pl.String, "day": pl.String, "rows": pl.Int64},
    )
    return (
        written.group_by("table", "day")
        .agg(pl.col("rows").sum(), pl.col("service").unique().sort().str.join(", "))
        .sort("table", "day")
        .rows()
    )


@dg.asset_check(asset=INSTANCE_SAMPLES_KEY, blocking=True, op_tags=STORE_STEP)
def instance_samples_have_no_gaps(store: StoreResource):
    """Every instance of every service reports once per interval from its first to its last
    sample; a failure names the service, the instance and where its first gap starts."""
    samples = store.read(INSTANCE_SAMPLES)
    instances = samples.select(pl.struct("service", "instance_id").n_unique()).item()
    gappy = (
        gaps(samples)
        .group_by("service", "instance_id")
        .agg(pl.col("missing").sum(), gap_after=pl.col("after").min())
        .sort("service", "instance_id")
    )
    named = [
        f"{service}/{instance}: {missing} intervals missing, the first after "
        f"{after:%Y-%m-%d %H:%M:%S}"
        for service, instance, missing, after in gappy.head(5).rows()
    ]
    return dg.AssetCheckResult(
        passed=samples.height > 0 and gappy.is_empty(),
        description=(
            "no telemetry in the store"
            if samples.is_empty()
            else "; ".join(named) + (f"; {gappy.height - 5} more" if gappy.height > 5 else "")
            or f"{instances} instances, none with a gap"
        ),
        metadata={
            "rows": dg.MetadataValue.int(samples.height),
            "instances_with_gaps": dg.MetadataValue.int(gappy.height),
        },
    )


#: Warn when yesterday's telemetry has not arrived by the daily deadline: a scrape, an export
#: or the ingestion schedule stopped. Evaluated by ``telemetry_freshness_sensor``. Dagster 1.13
#: prefers a ``FreshnessPolicy``, but that judges an asset by its newest materialisation of any
#: partition, so backfilling last year's days would read as fresh; this check asks for the
#: newest day itself (docs/operations.md, "Freshness").
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    TELEMETRY_FRESHNESS_CHECKS = dg.build_time_partition_freshness_checks(
        assets=list(TELEMETRY_KEYS), deadline_cron=DAILY_DEADLINE_CRON, timezone="UTC"
    )
