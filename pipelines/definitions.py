"""The code location: every asset, check and job, bound to the store and the scenario."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import dashboards as dashboards_assets
from pipelines.assets import ingest as ingest_assets
from pipelines.assets import policies as policies_assets
from pipelines.assets import publication as publication_assets
from pipelines.assets import scheduler as scheduler_assets
from pipelines.assets import signals as signals_assets
from pipelines.assets import telemetry as telemetry_assets
from pipelines.jobs import heteroscale_job
from pipelines.resources import ScenarioResource, StoreResource
from pipelines.sensors import inbox_sensor, ingest_job

ASSET_MODULES = [
    telemetry_assets,
    signals_assets,
    policies_assets,
    publication_assets,
    scheduler_assets,
    dashboards_assets,
    ingest_assets,
]


def build_definitions(store: StoreResource, scenario: ScenarioResource) -> dg.Definitions:
    """Definitions bound to one store and one scenario (the CLI binds its own ``--out``)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[heteroscale_job, ingest_job],
        sensors=[inbox_sensor],
        resources={"store": store, "scenario": scenario},
    )


defs = build_definitions(StoreResource(), ScenarioResource())
