"""The report asset: one self-contained HTML page over every table of the run."""

import dagster as dg

from dashboards import write_report
from pipelines.assets.policies import BACKTEST_KEY, SCALING_DECISIONS_KEY
from pipelines.assets.scheduler import PLACEMENT_PLAN_KEY
from pipelines.assets.signals import SIGNAL_SCORES_KEY
from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.resources import ScenarioResource, StoreResource
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD


@dg.asset(
    key=["dashboards", "report_html"],
    deps=[
        INSTANCE_SAMPLES_KEY,
        SERVICE_LOAD_KEY,
        SIGNAL_SCORES_KEY,
        SCALING_DECISIONS_KEY,
        PLACEMENT_PLAN_KEY,
        BACKTEST_KEY,
    ],
    group_name="dashboards",
    description=(
        "Telemetry, signal scores, decisions, placement and the backtest on one offline HTML page."
    ),
)
def report_html(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    service = scenario.service
    path = write_report(
        store.report_path(),
        instance_samples=store.read(INSTANCE_SAMPLES, service=service),
        service_load=store.read(SERVICE_LOAD, service=service),
        signal_scores=store.read("signal_scores", service=service),
        decisions=store.read("scaling_decisions", service=service),
        placement=store.read("placement_plan", service=service),
        backtest_decisions=store.read("backtest_decisions", service=service),
        backtest_summary=store.read("backtest_summary", service=service),
    )
    context.log.info(f"report written to {path}")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "bytes": path.stat().st_size}
    )
