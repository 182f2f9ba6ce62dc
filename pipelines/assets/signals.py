"""The signal study asset: how well each candidate signal tracks offered load."""

import dagster as dg

from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.markdown import markdown_table
from pipelines.resources import ScenarioResource, StoreResource
from signals import score_signals
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

SIGNAL_SCORES_KEY = dg.AssetKey(["signals", "signal_scores"])


@dg.asset(
    key=SIGNAL_SCORES_KEY,
    deps=[INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY],
    group_name="signals",
    description="Per role and signal: correlation with offered load, scale-in response, noise.",
)
def signal_scores(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    context.log.info(f"scoring signals over {scenario.signal_window_s:g} s windows")
    scores = score_signals(
        store.read(INSTANCE_SAMPLES, service=scenario.service),
        store.read(SERVICE_LOAD, service=scenario.service),
        window_s=scenario.signal_window_s,
    )
    rows = store.write("signal_scores", scores, ("service",))
    return dg.MaterializeResult(metadata={"rows": rows, "scores": markdown_table(scores)})
