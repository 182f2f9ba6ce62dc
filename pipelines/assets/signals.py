"""The signal study assets: how well each candidate signal tracks offered load, and which one
should drive autoscaling (docs/signals.md)."""

import dagster as dg
import polars as pl

from pipelines.assets.policies import CURATION_KEY
from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY
from pipelines.metadata import ROW_COUNT, markdown_table, typed
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource
from policies.fleet import pressure_targets
from policies.slo import ServiceSLO
from signals import RECOMMENDATION_SCHEMA, run_study, score_signals
from signals.drift import daily_drift
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TableWrite

SIGNAL_SCORES_KEY = dg.AssetKey(["signals", "signal_scores"])
SIGNAL_STUDY_KEY = dg.AssetKey(["signals", "signal_study"])


@dg.asset(
    key=SIGNAL_SCORES_KEY,
    deps=[INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY],
    group_name="signals",
    description="Per role and signal: correlation with offered load, scale-in response, noise.",
    op_tags=STORE_STEP,
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
    return dg.MaterializeResult(metadata=typed({ROW_COUNT: rows, "scores": markdown_table(scores)}))


@dg.asset(
    key=SIGNAL_STUDY_KEY,
    deps=[INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY, CURATION_KEY],
    group_name="signals",
    description=(
        "Every candidate signal classed proportional / negative_feedback / unusable with its "
        "statistics, intervals and reasons, ranked; the recommended signal and its target."
    ),
    op_tags=STORE_STEP,
)
def signal_study(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    """The study on the scenario's telemetry; a target the data does not show comes from the
    curation's pressure tests."""
    service = scenario.service
    curated = store.read("curated_policy", service=service).row(0, named=True)
    slo = ServiceSLO(ttft_p99_s=curated["ttft_p99_slo_s"], tbt_p99_s=curated["tbt_p99_slo_s"])
    table, recommended = run_study(
        store.read(INSTANCE_SAMPLES, service=service),
        store.read(SERVICE_LOAD, service=service),
        service=service,
        window_s=scenario.signal_window_s,
        slo=slo,
        pressure_targets=pressure_targets(curated, service),
    )
    recommendation = pl.DataFrame(
        [recommended or {"service": service}], schema=RECOMMENDATION_SCHEMA
    )
    rows = store.store().write_many(
        [
            TableWrite("signal_study", table.with_columns(service=pl.lit(service)), ("service",)),
            TableWrite("signal_recommendation", recommendation, ("service",)),
        ]
    )
    best = recommended or {}
    context.log.info(f"recommended signal: {best}")
    return dg.MaterializeResult(
        metadata=typed(
            {
                ROW_COUNT: rows[0],
                "recommended_signal": f"{best.get('role')} {best.get('signal')}",
                "target_per_instance": best.get("target_per_instance"),
                "target_source": best.get("target_source"),
                "ranking": markdown_table(
                    table.select("rank", "role", "gpu_type", "signal", "class")
                ),
            }
        )
    )


@dg.asset_check(
    asset=SIGNAL_STUDY_KEY,
    description=(
        "Warns when the recommended signal's relation with load weakens on a day of the "
        "telemetry: its correlation below, or its slope outside, the study's bootstrap band."
    ),
    op_tags=STORE_STEP,
)
def recommended_signal_tracks_load(
    scenario: ScenarioResource, store: StoreResource
) -> dg.AssetCheckResult:
    service = scenario.service
    recommended = store.read("signal_recommendation", service=service)
    if recommended.is_empty() or recommended["signal"][0] is None:
        return dg.AssetCheckResult(
            passed=True,
            metadata=typed({"checked": "nothing: the study recommended no signal"}),
        )
    pick = recommended.row(0, named=True)
    study = store.read("signal_study", service=service).filter(
        (pl.col("role") == pick["role"])
        & (pl.col("signal") == pick["signal"])
        & pl.col("gpu_type").eq_missing(pl.lit(pick["gpu_type"], pl.String))
    )
    drift = daily_drift(
        store.read(INSTANCE_SAMPLES, service=service),
        store.read(SERVICE_LOAD, service=service),
        study.row(0, named=True),
        window_s=scenario.signal_window_s,
    )
    weakened = drift.filter("weakened")
    return dg.AssetCheckResult(
        passed=weakened.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{pick['role']} {pick['signal']}: "
            + (
                "; ".join(
                    f"{day}: {', '.join(reasons)}"
                    for day, reasons in weakened.select("day", "reasons").iter_rows()
                )
                or f"tracks load on all {drift.height} days"
            )
        ),
        metadata=typed(
            {
                "days": drift.height,
                "days_weakened": weakened.height,
                "per_day": markdown_table(
                    drift.select("day", "n_intervals", "pearson", "slope", "weakened")
                ),
            }
        ),
    )
