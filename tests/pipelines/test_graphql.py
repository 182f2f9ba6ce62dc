"""The Dagster UI's own API, end to end: a real ``dagster dev`` (webserver, daemon, code server)
on a free port against a throwaway DAGSTER_HOME, a backfill of two telemetry days of
``telemetry_job`` launched through GraphQL with the mutation the UI's backfill dialog sends, run
by the daemon, then the materialisations read back through GraphQL and checked against the
store."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from telemetry.store import TelemetryStore
from tests.telemetry.ingest.frames import START, hourly_days_export

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")
DAYS = [(START + timedelta(days=k)).date().isoformat() for k in range(3)]
STARTUP_S = 180.0
RUN_S = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webserver:
    """GraphQL requests to a running webserver."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def query(self, text: str, **variables) -> dict:
        body = json.dumps({"query": text, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url, body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


LOCATIONS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }
"""
BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 10) { runId status } }
  }
}
"""
MATERIALISATIONS = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 10) {
        partition
        runId
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""


def wait_for(what: str, timeout_s: float, probe):
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """``dagster dev`` on the code location, with a telemetry source of three days."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home)
    export, mapping = hourly_days_export(home)
    db = home / "heteroscale.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HETEROSCALE_DB": str(db),
        "HETEROSCALE_SOURCES": str(export),
        "HETEROSCALE_MAPPING": str(mapping),
        "HETEROSCALE_INBOX": str(home / "inbox"),
    }
    port = free_port()
    log = (home / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-m", "pipelines.definitions", "-p", str(port)],
        cwd=home,  # the instance's relative storage paths resolve here, not in the repository
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Webserver(port)
    try:
        nodes = wait_for(
            "the code location",
            STARTUP_S,
            lambda: server.query(LOCATIONS)["repositoriesOrError"].get("nodes"),
        )
        yield server, nodes[0], db
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_a_backfill_launched_through_graphql_materialises_the_days_it_names(deployment):
    server, repository, db = deployment
    launched = server.query(
        BACKFILL,
        params={
            "selector": {
                "repositorySelector": {
                    "repositoryName": repository["name"],
                    "repositoryLocationName": repository["location"]["name"],
                },
                "partitionSetName": "telemetry_job_partition_set",
            },
            "partitionNames": DAYS[:2],
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished():
        backfill = server.query(BACKFILL_STATUS, id=launched["backfillId"])
        backfill = backfill["partitionBackfillOrError"]
        runs = backfill["runs"]
        done = len(runs) == 2 and all(r["status"] in ("SUCCESS", "FAILURE") for r in runs)
        return backfill if done else None

    backfill = wait_for("the backfill's runs", RUN_S, finished)
    assert [r["status"] for r in backfill["runs"]] == ["SUCCESS", "SUCCESS"]

    stored = TelemetryStore(db)
    for table in ("instance_samples", "service_load"):
        asset = server.query(MATERIALISATIONS, path=["telemetry", table])["assetOrError"]
        reported = {
            m["partition"]: {e["label"]: e.get("intValue") for e in m["metadataEntries"]}
            for m in asset["assetMaterializations"]
        }
        rows = {d.isoformat(): n for d, n in stored.read(table).group_by("day").len().rows()}
        assert set(reported) == set(DAYS[:2]) == set(rows)
        assert {day: m["dagster/row_count"] for day, m in reported.items()} == rows
