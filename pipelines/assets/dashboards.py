"""The report asset: one self-contained HTML page, the policy decision first, then the telemetry
and placement it rests on."""

import dagster as dg

from dashboards import write_report
from pipelines.assets.policies import (
    CURATION_KEY,
    FLEET_BACKTEST_KEY,
    MODE_AGREEMENT_KEY,
    SCALING_DECISIONS_KEY,
)
from pipelines.assets.scheduler import PLACEMENT_PLAN_KEY
from pipelines.assets.signals import SIGNAL_SCORES_KEY, SIGNAL_STUDY_KEY
from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.resources import ScenarioResource, StoreResource
from signals import paired_series
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

#: ``write_report`` keyword -> the store table it reads (every one per service).
TABLES = {
    "instance_samples": INSTANCE_SAMPLES,
    "service_load": SERVICE_LOAD,
    "signal_scores": "signal_scores",
    "signal_study": "signal_study",
    "signal_recommendation": "signal_recommendation",
    "decisions": "scaling_decisions",
    "placement": "placement_plan",
    "curated_policy": "curated_policy",
    "curation_candidates": "curation_candidates",
    "pressure_sweep": "pressure_sweep",
    "fleet_summary": "fleet_summary",
    "fleet_per_day": "fleet_per_day",
    "fleet_timeline": "fleet_timeline",
    "mode_agreement": "mode_agreement",
}


@dg.asset(
    key=["dashboards", "report_html"],
    deps=[
        INSTANCE_SAMPLES_KEY,
        SERVICE_LOAD_KEY,
        SIGNAL_SCORES_KEY,
        SIGNAL_STUDY_KEY,
        PLACEMENT_PLAN_KEY,
        CURATION_KEY,
        FLEET_BACKTEST_KEY,
        MODE_AGREEMENT_KEY,
        SCALING_DECISIONS_KEY,
    ],
    group_name="dashboards",
    description=(
        "The chosen policy, its savings and a verdict per target, then the fleet backtest, "
        "telemetry, signal scores and placement, on one offline HTML page."
    ),
)
def report_html(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    service = scenario.service
    tables = {keyword: store.read(table, service=service) for keyword, table in TABLES.items()}
    path = write_report(
        store.report_path(),
        **tables,
        signal_series=paired_series(
            tables["instance_samples"],
            tables["service_load"],
            window_s=scenario.signal_window_s,
            service=service,
        ),
    )
    context.log.info(f"report written to {path}")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "bytes": path.stat().st_size}
    )
