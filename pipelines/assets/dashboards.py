"""The report asset: offline HTML pages, the decision on the index (the path the CLI prints),
the signal study, backtest, placement, telemetry health and simulator fidelity behind it."""

import dagster as dg

from dashboards import DECISION_TABLES, PAGES, page_path, write_report, write_services_index
from pipelines.assets.policies import (
    CURATION_KEY,
    FLEET_BACKTEST_KEY,
    MODE_AGREEMENT_KEY,
    SCALING_DECISIONS_KEY,
)
from pipelines.assets.scheduler import PLACEMENT_PLAN_KEY
from pipelines.assets.signals import SIGNAL_SCORES_KEY, SIGNAL_STUDY_KEY
from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource
from signals import paired_series
from telemetry.ingest import INGEST_LOG, QUARANTINE
from telemetry.ingest.load import SERVICE_LOAD_ORIGIN
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

REPORT_KEY = dg.AssetKey(["dashboards", "report_html"])

#: ``write_report`` keyword -> the store table it reads (every one per service).
TABLES = {
    "instance_samples": INSTANCE_SAMPLES,
    "service_load": SERVICE_LOAD,
    "signal_scores": "signal_scores",
    "signal_study": "signal_study",
    "signal_recommendation": "signal_recommendation",
    "decisions": "scaling_decisions",
    "placement": "placement_plan",
    "placement_outcomes": "placement_outcomes",
    "curated_policy": "curated_policy",
    "curation_candidates": "curation_candidates",
    "pressure_sweep": "pressure_sweep",
    "fleet_summary": "fleet_summary",
    "fleet_per_day": "fleet_per_day",
    "fleet_timeline": "fleet_timeline",
    "mode_agreement": "mode_agreement",
}
#: ``write_report`` keyword -> ingestion's table, read whole where the store has it (a store
#: the simulator filled has none, and the report says so).
INGESTION_TABLES = {
    "ingest_log": INGEST_LOG,
    "quarantine": QUARANTINE,
    "service_load_origin": SERVICE_LOAD_ORIGIN,
}


@dg.asset(
    key=REPORT_KEY,
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
        "Offline HTML pages: the decision first (SLO and publication verdicts, the signal, "
        "the configuration, savings with CIs, a verdict per target), then the signal study, "
        "the policy and its backtest, the placement, telemetry and ingestion health, and the "
        "simulator's fidelity."
    ),
    op_tags=STORE_STEP,
)
def report_html(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    service = scenario.service
    tables = {keyword: store.read(table, service=service) for keyword, table in TABLES.items()}
    stored = store.store().row_counts()
    ingestion = {
        keyword: store.read(table) for keyword, table in INGESTION_TABLES.items() if table in stored
    }
    path = write_report(
        store.report_path(service),
        **tables,
        **ingestion,
        signal_series=paired_series(
            tables["instance_samples"],
            tables["service_load"],
            window_s=scenario.signal_window_s,
            service=service,
        ),
    )
    pages = [page_path(path, slug) for slug in PAGES]
    context.log.info(f"report written to {path} and {len(pages) - 1} pages beside it")
    index = store.services_index_path()
    if index is not None:
        services = store.store().distinct(INSTANCE_SAMPLES, ["service"])["service"]
        decided = {name: store.read(name) for name in DECISION_TABLES}
        pages.append(write_services_index(index, sorted(services), decided))
        context.log.info(f"the index of the store's services written to {index}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "pages": dg.MetadataValue.md("\n".join(f"- `{page.name}`" for page in pages)),
            "bytes": dg.MetadataValue.int(sum(page.stat().st_size for page in pages)),
        }
    )
