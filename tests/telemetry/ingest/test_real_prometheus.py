"""Round trip through a real Prometheus: backfill exposition text, query it back over HTTP.

The canonical frames are written as OpenMetrics with real vLLM, DCGM, kube-state-metrics and
Dynamo names, backfilled with ``promtool tsdb create-blocks-from openmetrics``, served by a
``prometheus`` on loopback, and read through ``/api/v1/query_range`` with the default PromQL.

Tolerances: rates, gauges and ratios within 1e-3 relative (PromQL's ``rate`` extrapolates by
the one-millisecond rounding of the evaluation window); latency quantiles within one bucket of
the writer's ladder, i.e. 10 % relative plus 0.1 ms.
"""

import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import timedelta

import polars as pl
import pytest
from numpy.testing import assert_allclose

from telemetry.ingest import Mapping, ingest
from telemetry.ingest.exposition import write_openmetrics
from tests.telemetry.ingest.frames import NOW, START, source_frames

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="needs Debian's prometheus package (promtool + prometheus); .ci/run installs it",
)

INTERVALS = 20
INTERVAL_S = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    """A backfilled Prometheus on loopback; yields its URL and the source frames."""
    instances, load = source_frames(INTERVALS, INTERVAL_S)
    exposition = tmp_path / "backfill.om"
    exposition.write_text(write_openmetrics(instances, load))
    data = tmp_path / "tsdb"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(exposition), str(data)],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (tmp_path / "prometheus.log").read_text()[-2000:]
                pytest.fail(f"prometheus did not become ready: {tail}")
            time.sleep(0.2)
        yield url, instances, load
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_round_trip_through_a_real_prometheus(prometheus, store):
    url, instances, load = prometheus
    mapping = Mapping(prometheus={"selector": 'service="chat"'})
    report = ingest(
        [f"prometheus+{url}"],
        store,
        mapping=mapping,
        service="chat",
        interval_s=INTERVAL_S,
        start=START,
        end=START + timedelta(seconds=INTERVALS * INTERVAL_S),
        now=NOW,
    )
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    got = store.read("instance_samples")
    assert got.height == instances.height
    paired = instances.join(got, on=["instance_id", "ts"], suffix="_got")
    assert paired.height == instances.height
    for column in ("role", "gpu_type", "gpus_per_instance", "ready"):
        assert paired[column].to_list() == paired[f"{column}_got"].to_list(), column
    for column in (
        "gpu_util_ratio",
        "sm_active_ratio",
        "prefill_tps_total",
        "prefill_tps_cache_missed",
        "decode_tps",
        "queue_depth",
        "running_requests",
        "kv_usage_ratio",
    ):
        assert_allclose(
            paired[f"{column}_got"], paired[column], rtol=1e-3, atol=1e-9, err_msg=column
        )
    for column in ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tbt_p50_s", "tbt_p99_s"):
        both = paired.filter(pl.col(column).is_not_null())
        assert both[f"{column}_got"].null_count() == 0, column
        assert_allclose(both[f"{column}_got"], both[column], rtol=0.1, atol=1e-4, err_msg=column)
        nulls = paired.filter(pl.col(column).is_null())
        assert nulls[f"{column}_got"].null_count() == nulls.height, column
    served = store.read("service_load").sort("ts")
    assert_allclose(served["request_rate_rps"], load["request_rate_rps"], rtol=1e-3)
    assert_allclose(served["input_tps"], load["input_tps"], rtol=1e-3)
