"""The Dagster code location loads, has the asset graph the main job promises, and the repo's
dagster.yaml serves a persistent instance."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._config import process_config

from pipelines.definitions import defs
from pipelines.executors import multiprocess_config
from pipelines.partitions import TELEMETRY_DAYS

ROOT = Path(__file__).resolve().parents[2]

TELEMETRY_ASSETS = [
    "telemetry/instance_samples",
    "telemetry/service_load",
    "telemetry/request_outcomes",
]
#: The telemetry step and its blocking gap check.
TELEMETRY_NODES = {
    "canonical_telemetry",
    "telemetry__instance_samples_instance_samples_have_no_gaps",
}
#: Everything the main job derives from telemetry, with its checks.
POLICY_NODES = {
    "signals__signal_scores",
    "signals__signal_study",
    "policies__curation",
    "fleet_policy",
    "scheduler__placement_plan",
    "dashboards__report_html",
    "signals__signal_study_recommended_signal_tracks_load",
    "policies__policy_spec",
    "policies__policy_exports",
    "policies__policy_spec_policy_spec_passes_publication_gate",
    "scheduler__placement_plan_placement_plan_respects_affinity",
    "scheduler__placement_plan_placement_plan_places_every_instance",
}

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
    assert {node.name for node in job.nodes} == TELEMETRY_NODES | POLICY_NODES


def test_telemetry_is_partitioned_by_day_and_the_other_jobs_split_the_main_one():
    graph = defs.resolve_asset_graph()
    for asset in TELEMETRY_ASSETS:
        assert graph.get(dg.AssetKey.from_user_string(asset)).partitions_def == TELEMETRY_DAYS
    assert defs.resolve_job_def("heteroscale_job").partitions_def == TELEMETRY_DAYS
    assert {n.name for n in defs.resolve_job_def("telemetry_job").nodes} == TELEMETRY_NODES
    policy = defs.resolve_job_def("policy_job")
    assert {n.name for n in policy.nodes} == POLICY_NODES and policy.partitions_def is None
    repository = defs.get_repository_def()
    schedules = {s.name: s.job_name for s in repository.schedule_defs}
    assert schedules == {
        "daily_telemetry_schedule": "telemetry_job",
        "daily_policy_schedule": "policy_job",
    }
    assert {s.name for s in repository.sensor_defs} == {
        "inbox_sensor",
        "telemetry_freshness_sensor",
    }
    freshness = {
        key.asset_key.to_user_string()
        for key in graph.asset_check_keys
        if key.name == "freshness_check"
    }
    assert freshness == set(TELEMETRY_ASSETS) - {"telemetry/request_outcomes"}


def test_the_executors_configuration_is_one_dagster_accepts():
    for workers in (0, 1, 4):
        checked = process_config(
            dg.multiprocess_executor.config_schema.as_field().config_type,
            multiprocess_config(workers),
        )
        assert checked.success, checked.errors


def test_every_step_that_opens_the_store_carries_the_tag_its_executor_limits():
    """DuckDB lets one process hold the store open to write: the executor runs the steps
    tagged as opening it one at a time (tests/pipelines/test_run.py shows it), and every step
    that requires the store carries the tag; the sweep's steps do not need it."""
    for name in ("heteroscale_job", "telemetry_job", "policy_job", "ingest_job"):
        job = defs.resolve_job_def(name)
        executor = "in_process" if name == "ingest_job" else "multiprocess"
        assert job.executor_def.name == executor, name
        for node in job.graph.iterate_op_defs():
            opens_store = "store" in node.required_resource_keys
            assert (node.tags.get("heteroscale/store") == "duckdb") == opens_store, node.name
    sweep = {
        node.name
        for node in defs.resolve_job_def("heteroscale_job").graph.iterate_op_defs()
        if not node.required_resource_keys
    }
    assert sweep == {"simulate_candidates"}


def test_the_code_location_reads_its_settings_from_the_environment_at_run_time():
    resources = defs.resources
    assert resources["store"].db_path == dg.EnvVar("HETEROSCALE_DB")
    assert resources["source"].sources == dg.EnvVar("HETEROSCALE_SOURCES")
    assert resources["source"].mapping == dg.EnvVar("HETEROSCALE_MAPPING")
    assert resources["inbox"].path == dg.EnvVar("HETEROSCALE_INBOX")
    # The checked-in .env gives `dg dev` the embedded default's values.
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env == {
        "HETEROSCALE_DB": "out/heteroscale.duckdb",
        "HETEROSCALE_SOURCES": "simulator",
        "HETEROSCALE_MAPPING": "",
        "HETEROSCALE_INBOX": "inbox",
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
