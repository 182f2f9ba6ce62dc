"""The Dagster code location loads, has the asset graph the main job promises, and the repo's
dagster.yaml serves a persistent instance."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

ROOT = Path(__file__).resolve().parents[2]

#: Each asset of the main job and the assets it reads.
LINEAGE = {
    "signals/signal_scores": {"telemetry/instance_samples", "telemetry/service_load"},
    "signals/signal_study": {
        "telemetry/instance_samples",
        "telemetry/service_load",
        "policies/curation",
    },
    "policies/curation": set(),
    "policies/fleet_backtest": {"policies/curation"},
    "policies/mode_agreement": {"policies/fleet_backtest"},
    "policies/scaling_decisions": {"policies/fleet_backtest"},
    "policies/policy_spec": {"policies/fleet_backtest"},
    "policies/policy_exports": {"policies/policy_spec"},
    "scheduler/placement_plan": {"policies/scaling_decisions", "policies/curation"},
    "dashboards/report_html": {
        "telemetry/instance_samples",
        "telemetry/service_load",
        "signals/signal_scores",
        "signals/signal_study",
        "scheduler/placement_plan",
        "policies/curation",
        "policies/fleet_backtest",
        "policies/mode_agreement",
        "policies/scaling_decisions",
    },
}


def test_the_main_job_covers_the_path_from_trace_to_dashboard():
    graph = defs.resolve_asset_graph()
    for asset, parents in LINEAGE.items():
        node = graph.get(dg.AssetKey.from_user_string(asset))
        assert {key.to_user_string() for key in node.parent_keys} == parents, asset
    job = defs.resolve_job_def("heteroscale_job")
    assert {node.name for node in job.nodes} == {
        "simulated_telemetry",
        "signals__signal_scores",
        "signals__signal_study",
        "fleet_policy",
        "scheduler__placement_plan",
        "dashboards__report_html",
        "telemetry__instance_samples_instance_samples_have_no_gaps",
        "signals__signal_study_recommended_signal_tracks_load",
        "policies__policy_spec",
        "policies__policy_exports",
        "policies__policy_spec_policy_spec_passes_publication_gate",
        "scheduler__placement_plan_placement_plan_respects_affinity",
        "scheduler__placement_plan_placement_plan_places_every_instance",
    }


def test_dg_check_defs_passes(tmp_path):
    dg_cli = Path(sys.executable).with_name("dg")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_repo_dagster_yaml_gives_a_persistent_instance(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)  # the yaml's storage paths are relative to where Dagster runs
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.is_persistent
        assert (tmp_path / ".dagster_home" / "storage").is_dir()
