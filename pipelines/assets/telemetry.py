"""Telemetry assets: the embedded default source is the simulator replaying a real day of load."""

import dagster as dg
import polars as pl

from pipelines.resources import ScenarioResource, StoreResource
from simulator import default_cluster, simulate
from simulator.persist import REQUEST_OUTCOMES, write_result
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

INSTANCE_SAMPLES_KEY = dg.AssetKey(["telemetry", INSTANCE_SAMPLES])
SERVICE_LOAD_KEY = dg.AssetKey(["telemetry", SERVICE_LOAD])
REQUEST_OUTCOMES_KEY = dg.AssetKey(["telemetry", REQUEST_OUTCOMES])


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
            description="Per-request outcome of the simulated run (arrival, TTFT, finish).",
        ),
    ],
)
def simulated_telemetry(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
):
    """Replay the scenario's requests through the default P/D cluster and store its telemetry."""
    trace = scenario.trace()
    cluster = default_cluster()
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
            "rows": rows[INSTANCE_SAMPLES],
            "instances": result.instance_samples["instance_id"].n_unique(),
        },
    )
    yield dg.MaterializeResult(asset_key=SERVICE_LOAD_KEY, metadata={"rows": rows[SERVICE_LOAD]})
    yield dg.MaterializeResult(
        asset_key=REQUEST_OUTCOMES_KEY, metadata={"rows": rows[REQUEST_OUTCOMES]}
    )


@dg.asset_check(asset=INSTANCE_SAMPLES_KEY, blocking=True)
def instance_samples_have_no_gaps(store: StoreResource, scenario: ScenarioResource):
    """Every instance reports once per interval from its first to its last sample."""
    samples = store.read(INSTANCE_SAMPLES, service=scenario.service)
    span_s = (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds()
    per_instance = samples.group_by("instance_id").agg(
        rows=pl.len(), expected=(span_s / pl.col("interval_s").first()).round() + 1
    )
    gappy = per_instance.filter(pl.col("rows") != pl.col("expected"))
    return dg.AssetCheckResult(
        passed=samples.height > 0 and gappy.height == 0,
        metadata={"rows": samples.height, "instances_with_gaps": gappy.height},
    )
