"""The policy asset: the coordinated decode-TPS policy replayed over the recorded run."""

import dagster as dg

from pipelines.assets.telemetry import INSTANCE_SAMPLES_KEY
from pipelines.resources import ScenarioResource, StoreResource
from policies import (
    CoordinatedPolicyConfig,
    deployed_pd_ratio,
    replay_decisions,
    target_from_telemetry,
)
from telemetry.schema import INSTANCE_SAMPLES

SCALING_DECISIONS_KEY = dg.AssetKey(["policies", "scaling_decisions"])


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
    config = CoordinatedPolicyConfig(
        target_decode_tps_per_instance=target_from_telemetry(
            samples, scenario.tbt_slo_s, service=scenario.service
        ),
        pd_ratio=deployed_pd_ratio(samples, service=scenario.service),
        control_interval_s=scenario.control_interval_s,
    )
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
