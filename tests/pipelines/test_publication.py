"""Publication in Dagster: the spec asset writes the policy and its verdict, the blocking gate
stops a policy that misses on the evaluation days, and its manifests are then never written."""

import dagster as dg
import yaml

from pipelines.assets import publication
from pipelines.assets.policies import FLEET_BACKTEST_KEY
from pipelines.definitions import defs
from pipelines.resources import ScenarioResource, StoreResource
from policies.spec import load
from telemetry.store import TelemetryStore
from tests.policies.test_spec import curated_tables, write_store

CHECK = dg.AssetCheckKey(publication.POLICY_SPEC_KEY, "policy_spec_passes_publication_gate")


def publish(tmp_path, tables) -> tuple[dg.ExecuteInProcessResult, StoreResource]:
    """Materialise the spec, its gate and the exports on a store holding ``tables``."""
    db = tmp_path / "heteroscale.duckdb"
    write_store(db, tables)
    store = StoreResource(db_path=str(db))
    result = dg.materialize(
        [
            publication.policy_spec,
            publication.policy_spec_passes_publication_gate,
            publication.policy_exports,
        ],
        resources={"store": store, "scenario": ScenarioResource()},
        raise_on_error=False,
    )
    return result, store


def check_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == CHECK]
    return evaluation


def test_a_validated_policy_is_published_with_every_export(tmp_path):
    result, store = publish(tmp_path, curated_tables())
    assert result.success
    assert check_evaluation(result).passed
    spec = load(publication.spec_path(store, "chat").read_text())
    assert spec.validation.passed and spec.pd_ratio == 4.0
    stored = TelemetryStore(store.db_path).read("policy_spec")
    assert stored.height == 1 and stored["passed"].item()
    assert load(stored["spec_yaml"].item()) == spec
    written = sorted(p.name for p in publication.exports_dir(store, "chat").iterdir())
    assert written == [
        "heteroscale.rules.yaml",
        "hpa.yaml",
        "keda-scaledobjects.yaml",
        "policy-spec.yaml",
        "prometheus-adapter-rules.yaml",
        "prometheus-rule.yaml",
    ]
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {publication.POLICY_SPEC_KEY, publication.POLICY_EXPORTS_KEY}


def test_the_gate_blocks_a_policy_that_misses_on_unseen_days(tmp_path):
    # Cheaper than static peak, but TTFT within its SLO in only 98.2% of evaluation intervals.
    result, store = publish(tmp_path, curated_tables(ttft=0.982))
    assert not result.success
    evaluation = check_evaluation(result)
    assert not evaluation.passed
    assert evaluation.description.startswith("chat: heteroscale failed the publication gate: TTFT")
    assert "missed by 0.80 points" in evaluation.description
    # The spec records the verdict; the exports never ran and nothing was written.
    spec = yaml.safe_load(publication.spec_path(store, "chat").read_text())
    assert spec["validation"]["passed"] is False
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {publication.POLICY_SPEC_KEY}
    assert not publication.exports_dir(store, "chat").parent.exists()


def test_the_gate_blocks_a_policy_that_costs_more_than_static_peak(tmp_path):
    result, store = publish(tmp_path, curated_tables(gpu_hours=110_000.0))
    assert not result.success
    assert "5.6% more than static_peak's 104,158: missed" in check_evaluation(result).description
    assert not publication.exports_dir(store, "chat").exists()


def test_the_main_job_publishes_after_the_backtest_and_only_through_the_gate():
    graph = defs.resolve_asset_graph()
    spec = graph.get(publication.POLICY_SPEC_KEY)
    assert spec.parent_keys == {FLEET_BACKTEST_KEY}
    assert graph.get(publication.POLICY_EXPORTS_KEY).parent_keys == {publication.POLICY_SPEC_KEY}
    assert graph.get_check_spec(CHECK).blocking
    job = defs.resolve_job_def("heteroscale_job")
    assert {"policies__policy_spec", "policies__policy_exports"} <= {n.name for n in job.nodes}
