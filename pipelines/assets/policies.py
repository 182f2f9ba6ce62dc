"""The policy assets: Algorithm 1's curation, the multi-day fleet backtest of every policy
against the oracle, fast mode checked against request level, and the chosen policy's scaling
decisions (docs/policy.md).

Curation is a graph of steps: the pressure tests, the candidates' sweep in steps of
:data:`CANDIDATES_PER_STEP` that open no store (so an executor runs them in parallel, in
processes or Kubernetes pods), and the choice.
"""

from dataclasses import replace

import dagster as dg
import polars as pl

from dashboards import policy_groups
from pipelines.metadata import ROW_COUNT, markdown_table, typed
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource
from policies.curation import Curation, CurationPlan
from policies.fleet import (
    FleetScenario,
    backtest_tables,
    curation_tables,
    run_fleet_backtest,
    servegen_scenario,
    store_scenario,
)
from policies.modes import compare_modes
from policies.registry import select
from scheduler import load_topology
from telemetry.store import TableWrite

CURATION_KEY = dg.AssetKey(["policies", "curation"])
FLEET_BACKTEST_KEY = dg.AssetKey(["policies", "fleet_backtest"])
MODE_AGREEMENT_KEY = dg.AssetKey(["policies", "mode_agreement"])
SCALING_DECISIONS_KEY = dg.AssetKey(["policies", "scaling_decisions"])

#: Baselines checked at request level beside the chosen policy: the two cheapest that meet the
#: SLO on the fleet backtest (or come closest).
REQUEST_LEVEL_BASELINES = 2

#: Candidates a sweep step simulates (about 2.5 s each on the default workload): few enough steps
#: that starting each costs little beside its work, enough to spread the default grid's 36.
CANDIDATES_PER_STEP = 6


@dg.op(out={"plan": dg.Out(), "candidates": dg.DynamicOut()}, tags=STORE_STEP)
def pressure_tests(
    context: dg.OpExecutionContext, scenario: ScenarioResource, store: StoreResource
):
    """Algorithm 1's pressure tests on the curation days, then the candidates in steps."""
    fleet = fleet_scenario(scenario, store)
    context.log.info(f"curation on {fleet.source}")
    plan = fleet.plan_curation()
    yield dg.Output(plan, "plan")
    candidates = plan.candidates
    for first in range(0, len(candidates), CANDIDATES_PER_STEP):
        yield dg.DynamicOutput(
            candidates[first : first + CANDIDATES_PER_STEP],
            mapping_key=str(first // CANDIDATES_PER_STEP),
            output_name="candidates",
        )


@dg.op
def simulate_candidates(plan: CurationPlan, candidates: list[dict]) -> list[dict]:
    """Some candidates closed loop on the curation days: their scores (no store opened)."""
    return [plan.score(params) for params in candidates]


@dg.op(tags=STORE_STEP)
def choose_configuration(
    context: dg.OpExecutionContext,
    scenario: ScenarioResource,
    store: StoreResource,
    plan: CurationPlan,
    scores: list[list[dict]],
) -> Curation:
    """The configuration curation's objective picks from every candidate's scores; curation's
    tables stored."""
    curation = plan.choose(row for step in scores for row in step)
    fleet = fleet_scenario(scenario, store)
    tables = curation_tables(fleet, curation)
    service = pl.lit(scenario.service)
    stored = store.store().write_many(
        [
            TableWrite(name, frame.with_columns(service=service), ("service",))
            for name, frame in tables.items()
        ]
    )
    rows = dict(zip(tables, stored, strict=True))
    context.add_output_metadata(
        typed(
            {
                ROW_COUNT: rows["curation_candidates"],
                "pd_ratio": curation.inputs.pd_ratio,
                "decode_tps_per_instance": curation.inputs.decode_tps_per_instance,
                "utilisation_target": curation.config.utilisation_target,
                "met_objective": curation.met_objective,
                "source": fleet.source,
            }
        )
    )
    return curation


@dg.graph_asset(
    key=CURATION_KEY,
    group_name="policies",
    description=(
        "Algorithm 1 on the curation days: pressure tests (per-instance capacity at the SLO, the "
        "P/D split sweep), then the controller configuration swept, in parallel steps, and chosen."
    ),
)
def curation():
    plan, candidates = pressure_tests()
    scores = candidates.map(lambda step: simulate_candidates(plan, step)).collect()
    return choose_configuration(plan, scores)


@dg.multi_asset(
    ins={"curation": dg.AssetIn(CURATION_KEY)},
    specs=[
        dg.AssetSpec(
            FLEET_BACKTEST_KEY,
            group_name="policies",
            deps=[CURATION_KEY],
            description=(
                "Every policy, the oracle and the ablations closed loop in fast mode on the "
                "evaluation days: GPU-hours, utilisation, SLO attainment, actions, flaps."
            ),
        ),
        dg.AssetSpec(
            MODE_AGREEMENT_KEY,
            group_name="policies",
            deps=[FLEET_BACKTEST_KEY],
            description=(
                "The chosen policy and the strongest baselines at request level (placed on the "
                "fleet topology) against fast mode, on an hour of an evaluation day."
            ),
        ),
        dg.AssetSpec(
            SCALING_DECISIONS_KEY,
            group_name="policies",
            deps=[FLEET_BACKTEST_KEY],
            description="The chosen policy's instance counts, decision by decision.",
        ),
    ],
    op_tags=STORE_STEP,
)
def fleet_policy(
    context: dg.AssetExecutionContext,
    scenario: ScenarioResource,
    store: StoreResource,
    curation: Curation,
):
    """Backtest every policy on the curation, check the strongest at request level, and store
    it all."""
    fleet = fleet_scenario(scenario, store)
    context.log.info(f"fleet backtest on {fleet.source}")
    backtest = run_fleet_backtest(
        fleet, select(None, ablations=True), curation=curation, workers=scenario.backtest_workers
    )
    service = scenario.service
    tables = {
        name: frame.with_columns(service=pl.lit(service))
        for name, frame in backtest_tables(backtest).items()
    }
    stored = store.store().write_many(
        [TableWrite(name, frame, ("service",)) for name, frame in tables.items()]
    )
    rows = dict(zip(tables, stored, strict=True))
    summary = backtest.summary
    strongest = _strongest_baselines(summary, fleet.slo.attainment)
    first_s, span_s = request_level_span(fleet, scenario)
    modes = compare_modes(
        fleet,
        backtest.curation,
        select(["heteroscale", *strongest]),
        first_s=first_s,
        span_s=span_s,
        topology=load_topology(scenario.topology_path),
    )
    mode_rows = store.write(
        "mode_agreement", modes.with_columns(service=pl.lit(service)), ("service",)
    )
    heteroscale = summary.filter(pl.col("policy") == "heteroscale").row(0, named=True)
    yield dg.MaterializeResult(
        asset_key=FLEET_BACKTEST_KEY,
        metadata=typed(
            {
                ROW_COUNT: rows["fleet_summary"],
                "heteroscale_slo_attainment": heteroscale["slo_attainment"],
                "heteroscale_avg_gpu_util": heteroscale["avg_gpu_util"],
                "heteroscale_gpu_hours_vs_oracle": heteroscale["gpu_hours_vs_oracle"],
                "summary": markdown_table(
                    summary.select(
                        "policy",
                        "gpu_hours",
                        "gpu_hours_vs_oracle",
                        "avg_gpu_util",
                        "ttft_attainment",
                        "tbt_attainment",
                        "scaling_actions",
                        "flaps",
                    )
                ),
            }
        ),
    )
    yield dg.MaterializeResult(
        asset_key=MODE_AGREEMENT_KEY,
        metadata=typed({ROW_COUNT: mode_rows, "policies": ", ".join(["heteroscale", *strongest])}),
    )
    yield dg.MaterializeResult(
        asset_key=SCALING_DECISIONS_KEY,
        metadata=typed({ROW_COUNT: rows["scaling_decisions"]}),
    )


def fleet_scenario(scenario: ScenarioResource, store: StoreResource) -> FleetScenario:
    """The fleet workload the scenario names, on its cluster: the store's recorded offered
    load, or ServeGen m-large's days (on the embedded fleet's pools unless a cluster file
    replaces them)."""
    if scenario.fleet_from_store:
        return store_scenario(store.store(), service=scenario.service, cluster=scenario.cluster())
    fleet = servegen_scenario(
        days=scenario.fleet_days,
        curation_days=scenario.curation_days,
        rate_scale=scenario.fleet_rate_scale,
    )
    if not scenario.cluster_path:
        return fleet
    cluster = scenario.cluster()
    return replace(fleet, cluster=cluster, source=f"{fleet.source}; on {cluster.describe()}")


def request_level_span(fleet: FleetScenario, scenario: ScenarioResource) -> tuple[float, float]:
    """The request-level check's ``(first_s, span_s)``: the scenario's hours of the first
    evaluation day, moved earlier and shortened as far as a short evaluation part needs."""
    evaluation_s = fleet.evaluation.count * fleet.load.interval_s
    span_s = min(scenario.request_level_hours * 3600, evaluation_s)
    offset_s = min(scenario.request_level_start_h * 3600, evaluation_s - span_s)
    return fleet.curation_intervals * fleet.load.interval_s + offset_s, span_s


def _strongest_baselines(summary: pl.DataFrame, target: float) -> list[str]:
    """The baselines that meet the SLO with the fewest GPU-hours, then the closest misses."""
    baselines = policy_groups.baselines(summary)
    meets = pl.col("slo_attainment") >= target
    ranked = baselines.sort(
        meets,
        pl.when(meets).then(pl.col("gpu_hours")).otherwise(-pl.col("slo_attainment")),
        descending=[True, False],
    )
    return ranked["policy"].head(REQUEST_LEVEL_BASELINES).to_list()
