"""The policy assets: the coordinated decode-TPS policy replayed over the recorded run (open
loop) and backtested against the simulated cluster it resizes (closed loop)."""

import dagster as dg
import polars as pl

from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY, REQUEST_OUTCOMES_KEY
from pipelines.resources import ScenarioResource, StoreResource
from policies import (
    CoordinatedPolicyConfig,
    deployed_pd_ratio,
    deployed_requirements,
    replay_decisions,
    run_backtest,
    summarise_run,
    target_from_telemetry,
)
from scheduler import load_topology
from simulator import default_cluster, load_trace
from simulator.persist import REQUEST_OUTCOMES
from telemetry.schema import INSTANCE_SAMPLES
from telemetry.store import TableWrite

SCALING_DECISIONS_KEY = dg.AssetKey(["policies", "scaling_decisions"])
BACKTEST_KEY = dg.AssetKey(["policies", "backtest"])


def policy_config(samples: pl.DataFrame, scenario: ScenarioResource) -> CoordinatedPolicyConfig:
    """The controller both assets run: its target and ratio read off the recorded run."""
    return CoordinatedPolicyConfig(
        target_decode_tps_per_instance=target_from_telemetry(
            samples, scenario.tbt_slo_s, service=scenario.service
        ),
        pd_ratio=deployed_pd_ratio(samples, service=scenario.service),
        control_interval_s=scenario.control_interval_s,
    )


@dg.asset(
    key=SCALING_DECISIONS_KEY,
    deps=[INSTANCE_SAMPLES_KEY],
    group_name="policies",
    description="What the coordinated policy would have done each control interval (open loop).",
)
def scaling_decisions(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    samples = store.read(INSTANCE_SAMPLES, service=scenario.service)
    config = policy_config(samples, scenario)
    context.log.info(f"policy: {config}")
    decisions = replay_decisions(samples, config, service=scenario.service)
    rows = store.write("scaling_decisions", decisions, ("service",))
    actions = decisions["action"].value_counts().sort("action").iter_rows()
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "target_decode_tps_per_instance": config.target_decode_tps_per_instance,
            "pd_ratio": config.pd_ratio,
            **{f"actions_{action}": count for action, count in actions},
        }
    )


@dg.asset(
    key=BACKTEST_KEY,
    deps=[INSTANCE_SAMPLES_KEY, REQUEST_OUTCOMES_KEY],
    group_name="policies",
    description=(
        "The policy in closed loop: each decision placed on the topology and run by the "
        "simulator, compared with the fixed deployment (GPU-hours, utilisation, tails)."
    ),
)
def backtest(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    """Backtest the policy on the scenario's trace from the default cluster; store its
    decisions, its placement and a summary row per run (``fixed``, ``coordinated``)."""
    service = scenario.service
    samples = store.read(INSTANCE_SAMPLES, service=service)
    trace = load_trace(scenario.trace_path, scenario.trace_format)
    result = run_backtest(
        trace.requests,
        default_cluster(),
        policy_config(samples, scenario),
        service=service,
        start=trace.start,
        topology=load_topology(scenario.topology_path),
        requirements=deployed_requirements(samples, service=service),
        interval_s=scenario.interval_s,
    )
    summary = pl.concat(
        [
            summarise_run(samples, store.read(REQUEST_OUTCOMES, service=service), label="fixed"),
            summarise_run(result.run.instance_samples, result.run.requests, label="coordinated"),
        ]
    ).with_columns(service=pl.lit(service))
    store.store().write_many(
        [
            TableWrite("backtest_decisions", result.decisions, ("service",)),
            TableWrite("backtest_placement_plan", result.plan, ("service",)),
            TableWrite("backtest_summary", summary, ("service",)),
        ]
    )
    fixed, coordinated = summary.iter_rows(named=True)
    context.log.info(f"backtest: fixed {fixed}, coordinated {coordinated}")
    return dg.MaterializeResult(
        metadata={
            "decisions": result.decisions.height,
            "scale_actions": result.decisions.filter(pl.col("action") != "hold").height,
            "gpu_hours_fixed": fixed["gpu_hours_prefill"] + fixed["gpu_hours_decode"],
            "gpu_hours_coordinated": coordinated["gpu_hours_prefill"]
            + coordinated["gpu_hours_decode"],
            "gpu_util_fixed": fixed["gpu_util"],
            "gpu_util_coordinated": coordinated["gpu_util"],
            "ttft_p99_s_fixed": fixed["ttft_p99_s"],
            "ttft_p99_s_coordinated": coordinated["ttft_p99_s"],
        }
    )
