"""The code location: every asset, check, job, schedule and sensor, bound to the deployment's
store, telemetry source and inbox through environment variables read at run time."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import dashboards as dashboards_assets
from pipelines.assets import ingest as ingest_assets
from pipelines.assets import policies as policies_assets
from pipelines.assets import publication as publication_assets
from pipelines.assets import scheduler as scheduler_assets
from pipelines.assets import signals as signals_assets
from pipelines.assets import telemetry as telemetry_assets
from pipelines.executors import multiprocess
from pipelines.jobs import heteroscale_job, ingest_job, policy_job, telemetry_job
from pipelines.resources import (
    InboxResource,
    ScenarioResource,
    StoreResource,
    TelemetrySourceResource,
)
from pipelines.schedules import daily_policy_schedule, daily_telemetry_schedule
from pipelines.sensors import inbox_sensor, telemetry_freshness_sensor
from telemetry.store import DB_ENV_VAR

SOURCES_ENV_VAR = "HETEROSCALE_SOURCES"
MAPPING_ENV_VAR = "HETEROSCALE_MAPPING"
INBOX_ENV_VAR = "HETEROSCALE_INBOX"

ASSET_MODULES = [
    telemetry_assets,
    signals_assets,
    policies_assets,
    publication_assets,
    scheduler_assets,
    dashboards_assets,
    ingest_assets,
]


def build_definitions(
    store: StoreResource,
    scenario: ScenarioResource,
    source: TelemetrySourceResource | None = None,
    inbox: InboxResource | None = None,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.Definitions:
    """Definitions bound to one store, scenario, telemetry source and inbox (the CLI binds
    its own ``--out`` and the simulator; the code location binds the environment's), their
    jobs' steps run by ``executor`` (default: :func:`pipelines.executors.multiprocess`)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[heteroscale_job, telemetry_job, policy_job, ingest_job],
        schedules=[daily_telemetry_schedule, daily_policy_schedule],
        sensors=[inbox_sensor, telemetry_freshness_sensor],
        resources={
            "store": store,
            "scenario": scenario,
            "source": source or TelemetrySourceResource(),
            "inbox": inbox or InboxResource(),
        },
        executor=executor or multiprocess(),
    )


def environment_definitions(executor: dg.ExecutorDefinition) -> dg.Definitions:
    """Definitions bound to the deployment's environment variables, read when a run or sensor
    starts, their jobs' steps run by ``executor``."""
    return build_definitions(
        StoreResource(db_path=dg.EnvVar(DB_ENV_VAR)),
        ScenarioResource(),
        TelemetrySourceResource(
            sources=dg.EnvVar(SOURCES_ENV_VAR), mapping=dg.EnvVar(MAPPING_ENV_VAR)
        ),
        InboxResource(path=dg.EnvVar(INBOX_ENV_VAR)),
        executor,
    )


defs = environment_definitions(multiprocess())
