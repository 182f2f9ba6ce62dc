"""The shipped Kubernetes deployment (deploy/k8s/): the instance configures dagster-k8s's run
launcher and a queue of one run, Dagster's own config schema accepts it and the launcher builds
from it; its code location runs each step in a pod, passing outputs through the store's volume;
the manifests meet Kubernetes' schema; and the settings ConfigMap carries every variable the
code location and the instance read."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from pipelines.definitions import INBOX_ENV_VAR, MAPPING_ENV_VAR, SOURCES_ENV_VAR
from pipelines.executors import KUBERNETES_CONFIG
from telemetry.store import DB_ENV_VAR

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: The instance's connection settings, all but the password (a Secret) from the ConfigMap.
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "heteroscale-postgresql",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "from-the-secret",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_K8S_NAMESPACE": "heteroscale",
}
#: Enough of a kubeconfig for the client to load; nothing is contacted.
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: test}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
"""


@pytest.fixture
def instance_config(monkeypatch):
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(K8S))  # validates against the instance schema
    return config


def manifests() -> list[dict]:
    return list(yaml.safe_load_all((K8S / "heteroscale.yaml").read_text()))


def test_the_instance_launches_each_run_in_a_kubernetes_job_one_at_a_time(
    instance_config, tmp_path
):
    launcher = instance_config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert instance_config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert instance_config["run_coordinator"]["config"]["max_concurrent_runs"] == 1
    # Built as the daemon builds it, only pointed at a kubeconfig instead of the pod's account.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    outside = {**launcher["config"], "load_incluster_config": False}
    outside["kubeconfig_file"] = str(kubeconfig)
    built = ConfigurableClassData(
        launcher["module"], launcher["class"], yaml.safe_dump(outside)
    ).rehydrate(as_type=K8sRunLauncher)
    assert built.job_namespace == "heteroscale"
    assert built.env_config_maps == ["heteroscale-env"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in built.volumes] == ["heteroscale-store"]
    assert [m["mountPath"] for m in built.volume_mounts] == ["/data"]


def test_each_step_runs_in_a_pod_and_outputs_pass_through_the_store_volume(instance_config):
    """The Kubernetes code location's jobs run a step per pod (the curation sweep's side by
    side, the store's one at a time), and the folder steps hand outputs over in is on the
    volume every pod mounts."""
    from pipelines.kubernetes import defs

    for name in ("heteroscale_job", "telemetry_job", "policy_job"):
        assert defs.resolve_job_def(name).executor_def.name == "kubernetes", name
    checked = process_config(
        k8s_job_executor.config_schema.as_field().config_type, KUBERNETES_CONFIG
    )
    assert checked.success, checked.errors
    storage = instance_config["local_artifact_storage"]
    assert storage["class"] == "LocalArtifactStorage"
    assert storage["config"]["base_dir"].startswith("/data/")


def test_the_manifests_meet_kubernetes_schema_and_carry_every_setting(instance_config):
    version = kubernetes_validate.latest_version()
    objects = {obj["kind"]: obj for obj in manifests()}
    for obj in objects.values():
        kubernetes_validate.validate(obj, version, strict=True)
    settings = objects["ConfigMap"]["data"]
    read_by_code = {DB_ENV_VAR, SOURCES_ENV_VAR, MAPPING_ENV_VAR, INBOX_ENV_VAR}
    read_by_instance = set(INSTANCE_ENV) - {"DAGSTER_PG_PASSWORD"}  # from the Secret
    assert set(settings) == read_by_code | read_by_instance
    # The store lives on the volume every run mounts.
    assert settings[DB_ENV_VAR].startswith("/data/")
    assert objects["PersistentVolumeClaim"]["metadata"]["name"] == "heteroscale-store"
    launcher = instance_config["run_launcher"]["config"]
    assert launcher["env_config_maps"] == [objects["ConfigMap"]["metadata"]["name"]]
