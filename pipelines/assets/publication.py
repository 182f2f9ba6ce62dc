"""Publication: the chosen policy as a versioned spec, the gate it must pass, and the manifests
a cluster runs (docs/policy-spec.md, docs/deploy.md).

The spec is written whatever the verdict (it records the verdict, so a failed policy can be
read and argued with); the blocking check then stops the run when the policy misses the SLO
or saves nothing on the evaluation days, and the exports, downstream of the spec, are never
written for it.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.assets.policies import CURATION_KEY, FLEET_BACKTEST_KEY
from pipelines.metadata import ROW_COUNT, typed
from pipelines.resources import STORE_STEP, ScenarioResource, StoreResource
from policies.exporters import FORMATS, ClusterBinding, write_exports
from policies.gate import validate
from policies.spec import API_VERSION, dump, load, spec_from_store

POLICY_SPEC_KEY = dg.AssetKey(["policies", "policy_spec"])
POLICY_EXPORTS_KEY = dg.AssetKey(["policies", "policy_exports"])


def spec_path(store: StoreResource, service: str) -> Path:
    """The spec YAML beside the store."""
    return Path(store.db_path).parent / f"policy-spec-{service}.yaml"


def exports_dir(store: StoreResource, service: str) -> Path:
    """Where the validated policy's manifests go, beside the store."""
    return Path(store.db_path).parent / "deploy" / service


@dg.asset(
    key=POLICY_SPEC_KEY,
    deps=[FLEET_BACKTEST_KEY],
    group_name="policies",
    description=(
        "The chosen policy as a versioned spec (YAML beside the store, and the policy_spec "
        "table): signal, per-instance target, P/D ratio per pairing, thresholds, cool-downs, "
        "tiers, bounds, where each value came from, and the publication gate's verdict."
    ),
    op_tags=STORE_STEP,
)
def policy_spec(
    context: dg.AssetExecutionContext, scenario: ScenarioResource, store: StoreResource
) -> dg.MaterializeResult:
    """Build the spec from the curated policy and its fleet backtest, store it, write it."""
    curated = context.instance.get_latest_materialization_event(CURATION_KEY)
    spec = spec_from_store(
        store.store(), scenario.service, curation_run=curated.run_id if curated else None
    )
    text = dump(spec)
    path = spec_path(store, scenario.service)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    rows = store.write(
        "policy_spec",
        pl.DataFrame(
            [
                {
                    "service": spec.service,
                    "api_version": API_VERSION,
                    "passed": spec.validation.passed,
                    "curation_run": spec.provenance.curation_run,
                    "spec_yaml": text,
                }
            ],
            schema_overrides={"curation_run": pl.String},
        ),
        ("service",),
    )
    return dg.MaterializeResult(
        metadata=typed(
            {
                ROW_COUNT: rows,
                "path": dg.MetadataValue.path(str(path)),
                "gate_passed": spec.validation.passed,
                "pd_ratio": spec.pd_ratio,
                "decode_tps_per_instance": spec.decode_tps_per_instance,
            }
        )
    )


@dg.asset_check(
    asset=POLICY_SPEC_KEY,
    blocking=True,
    description=(
        "On the evaluation days (never seen by curation) the policy meets the SLO attainment "
        "target for TTFT and for TBT and uses fewer GPU-hours than static peak provisioning."
    ),
    op_tags=STORE_STEP,
)
def policy_spec_passes_publication_gate(
    scenario: ScenarioResource, store: StoreResource
) -> dg.AssetCheckResult:
    """The publication gate (:func:`policies.gate.validate`) on the stored fleet backtest."""
    curated = store.read("curated_policy", service=scenario.service).row(0, named=True)
    summary = store.read("fleet_summary", service=scenario.service)
    verdict = validate(summary, target=curated["slo_attainment_target"], policy=curated["policy"])
    return dg.AssetCheckResult(
        passed=verdict.passed,
        description=f"{scenario.service}: {verdict.summary()}",
        metadata=typed(
            {
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in verdict.reasons)),
                "ttft_attainment": verdict.ttft_attainment,
                "tbt_attainment": verdict.tbt_attainment,
                "gpu_hours": verdict.gpu_hours,
                "static_peak_gpu_hours": verdict.static_peak_gpu_hours,
            }
        ),
    )


@dg.asset(
    key=POLICY_EXPORTS_KEY,
    deps=[POLICY_SPEC_KEY],
    group_name="policies",
    description=(
        "The validated policy's manifests: the spec, a PrometheusRule and plain rule file, "
        "KEDA ScaledObjects and plain HPAs per role (deploy/<service>/ beside the store)."
    ),
    op_tags=STORE_STEP,
)
def policy_exports(scenario: ScenarioResource, store: StoreResource) -> dg.MaterializeResult:
    """Write every export format of the stored spec (the one the gate passed)."""
    stored = store.read("policy_spec", service=scenario.service)
    spec = load(stored["spec_yaml"].item())
    paths = write_exports(
        spec, list(FORMATS), exports_dir(store, scenario.service), ClusterBinding()
    )
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(exports_dir(store, scenario.service))),
            "files": dg.MetadataValue.text(", ".join(p.name for p in paths)),
        }
    )
