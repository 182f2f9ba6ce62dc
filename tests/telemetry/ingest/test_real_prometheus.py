"""Round trip through a real Prometheus: backfill exposition text, query it back over HTTP.

The canonical frames are written as OpenMetrics with real vLLM, DCGM, kube-state-metrics and
Dynamo names, backfilled with ``promtool tsdb create-blocks-from openmetrics``, served by a
``prometheus`` on loopback, and read through ``/api/v1/query_range`` with the default PromQL.

Tolerances: rates, gauges and ratios within 1e-3 relative (PromQL's ``rate`` extrapolates by
the one-millisecond rounding of the evaluation window); latency quantiles within one bucket of
the writer's ladder, i.e. 10 % relative plus 0.1 ms.
"""

import subprocess
from datetime import timedelta

import polars as pl
import pytest
from numpy.testing import assert_allclose

from telemetry.ingest import Mapping, ingest
from telemetry.ingest.exposition import write_openmetrics
from tests.prometheus_server import needs_prometheus, running_prometheus
from tests.telemetry.ingest.frames import NOW, START, source_frames

pytestmark = needs_prometheus

INTERVALS = 20
INTERVAL_S = 15.0


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
    with running_prometheus(
        tmp_path, "global:\n  scrape_interval: 15s\n", tsdb=data, retention="100y"
    ) as url:
        yield url, instances, load


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


def test_the_service_comes_from_the_series_labels_when_none_is_given(prometheus, store):
    url, instances, load = prometheus
    report = ingest(
        [f"prometheus+{url}"],
        store,
        interval_s=INTERVAL_S,
        start=START,
        end=START + timedelta(seconds=INTERVALS * INTERVAL_S),
        now=NOW,
    )
    assert report.rows_quarantined == 0
    assert set(store.read("instance_samples")["service"]) == {"chat"}
    assert set(store.read("service_load")["service"]) == {"chat"}
    assert "service" in report.notes
