"""The /metrics endpoint: a scrape, read back with the project's own exposition reader, shows
the simulator's telemetry under real vLLM / DCGM / Dynamo names; a real Prometheus scrapes it."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from numpy.testing import assert_allclose

from simulator import ClusterSpec, PoolSpec, default_trace, simulate
from simulator.closed_loop import ClosedLoopSimulation, ScaleAction
from simulator.cluster import LifecycleSpec
from simulator.prometheus_endpoint import CONTENT_TYPE, FinishedRun, MetricsServer
from simulator.traces import canonical_frame
from telemetry.ingest import prepare
from telemetry.ingest.exposition import parse
from tests.prometheus_server import needs_prometheus, query, running_prometheus

INTERVAL_S = 15.0


def _cluster(prefill: int = 2) -> ClusterSpec:
    return ClusterSpec(
        model="Llama-3.1-70B",
        prefill_pools=(PoolSpec("prefill", "L20", tp=4, count=prefill),),
        decode_pools=(PoolSpec("decode", "H20", tp=4, count=1),),
    )


@pytest.fixture(scope="module")
def run():
    trace = default_trace()
    result = simulate(trace.requests.head(500), _cluster(), service="chat", start=trace.start)
    return trace.start, result


class Clock:
    """Wall seconds the test sets by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _scrape(server: MetricsServer) -> tuple[str, str]:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def _series(text: str) -> pl.DataFrame:
    """metric, labels as columns, value: the scrape as the ingestion reader parses it."""
    raw = parse(text, "scrape", scrape=("sim", datetime.now(UTC)))
    assert raw.quarantine.height == 0
    return raw.named().join(raw.labels, on="labels").select(pl.exclude("labels", "source", "ts"))


def _value(series: pl.DataFrame, metric: str, **labels: str) -> list[float]:
    rows = series.filter(pl.col("metric") == metric)
    for name, value in labels.items():
        rows = rows.filter(pl.col(name) == value)
    return rows["value"].to_list()


def test_a_scrape_reads_back_as_the_simulators_telemetry(run):
    start, result = run
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), speed=2.0, clock=clock).start()
    try:
        content_type, text = _scrape(server)
        assert content_type == CONTENT_TYPE and text == "# EOF\n"  # no interval complete yet
        clock.now = 10.0  # 20 simulated seconds: one interval, then three more
        _scrape(server)
        clock.now = 30.0
        _, text = _scrape(server)
    finally:
        server.close()
    series = _series(text)
    samples = result.instance_samples.filter(pl.col("ts") < pl.lit(start) + pl.duration(seconds=60))
    latest = samples.filter(pl.col("ts") == pl.col("ts").max())
    assert latest.height == 3
    for row in latest.iter_rows(named=True):
        pod = row["instance_id"]
        for metric, column in [
            ("vllm:num_requests_running", "running_requests"),
            ("vllm:num_requests_waiting", "queue_depth"),
            ("vllm:kv_cache_usage_perc", "kv_usage_ratio"),
        ]:
            assert_allclose(_value(series, metric, pod=pod, role=row["role"]), [row[column]])
        gpus = _value(
            series, "DCGM_FI_DEV_GPU_UTIL", pod=pod, modelName=f"NVIDIA {row['gpu_type']}"
        )
        assert_allclose(gpus, [100 * row["gpu_util_ratio"]] * row["gpus_per_instance"])
        assert_allclose(
            _value(series, "DCGM_FI_PROF_SM_ACTIVE", pod=pod), [row["sm_active_ratio"]] * 4
        )
        mine = samples.filter(pl.col("instance_id") == pod)
        for metric, column in [
            ("vllm:generation_tokens_total", "decode_tps"),
            ("vllm:prompt_tokens_total", "prefill_tps_total"),
        ]:
            total = (mine[column] * INTERVAL_S).sum()
            assert_allclose(_value(series, metric, pod=pod), [total], rtol=1e-9)
        # 100 observations per interval with a first token (the writer's p50/p90/p99 split).
        with_ttft = mine["ttft_p50_s"].is_not_null().sum()
        count = _value(series, "vllm:time_to_first_token_seconds_count", pod=pod)
        inf = _value(series, "vllm:time_to_first_token_seconds_bucket", pod=pod, le="+Inf")
        assert count == inf == [100.0 * with_ttft]
    offered = result.service_load.filter(pl.col("ts") < pl.lit(start) + pl.duration(seconds=60))
    assert _value(series, "dynamo_frontend_requests_total") == pytest.approx(
        [(offered["request_rate_rps"] * INTERVAL_S).sum()]
    )
    assert "vllm:inter_token_latency_seconds_bucket" in set(series["metric"])


def test_scrapes_ingest_back_to_the_simulators_telemetry(tmp_path):
    """Scrape files (``<target>-<unix seconds>.prom``), each stamped in the middle of the
    interval it shows, read by ``heteroscale ingest``'s loader give back the simulator's
    intervals: counters as increases between scrapes, gauges as they were, latency quantiles
    within one bucket of the writer's ladder (10%)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)  # on the loader's 15 s grid
    result = simulate(default_trace().requests.head(500), _cluster(), service="chat", start=start)
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), clock=clock)
    for k in range(1, 9):
        clock.now = k * INTERVAL_S  # intervals 0 to k - 1 complete: shows interval k - 1
        stamp = start.timestamp() + (k - 0.5) * INTERVAL_S
        (tmp_path / f"sim-{stamp:.1f}.prom").write_text(server.scrape())
    server.close()
    got = prepare([str(tmp_path)], service="chat", interval_s=INTERVAL_S).canonical
    # Interval 0 has no earlier scrape to take counter increases from.
    expected = result.instance_samples.filter(
        pl.col("ts").is_between(start + timedelta(seconds=15), start + timedelta(seconds=105))
    )
    paired = expected.join(got.instance_samples, on=["instance_id", "ts"], suffix="_got")
    assert paired.height == expected.height == 3 * 7
    for column in (
        "gpu_util_ratio",
        "sm_active_ratio",
        "queue_depth",
        "running_requests",
        "kv_usage_ratio",
        "prefill_tps_total",
        "decode_tps",
    ):
        assert_allclose(paired[f"{column}_got"], paired[column], rtol=1e-9, err_msg=column)
    for column in ("ttft_p50_s", "ttft_p99_s", "tbt_p50_s", "tbt_p99_s"):
        assert paired[f"{column}_got"].is_null().equals(paired[column].is_null()), column
        both = paired.filter(pl.col(column).is_not_null())
        assert_allclose(both[f"{column}_got"], both[column], rtol=0.1, atol=1e-4, err_msg=column)
    load = got.service_load.join(result.service_load, on="ts", suffix="_sim")
    assert load.height == 7
    assert_allclose(load["request_rate_rps"], load["request_rate_rps_sim"], rtol=1e-9)


def test_a_pod_scaled_away_stops_being_exported():
    requests = canonical_frame(
        arrival_s=[float(k) for k in range(0, 120, 2)],
        input_tokens=[500] * 60,
        output_tokens=[20] * 60,
    )
    loop = ClosedLoopSimulation(
        requests,
        _cluster(prefill=2),
        service="s",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        lifecycle=LifecycleSpec(default_startup_s=0.0),
    )
    clock = Clock()
    server = MetricsServer(loop, clock=clock)
    clock.now = 30.0
    pods = set(_series(server.scrape())["pod"].drop_nulls())
    assert pods == {"prefill-L20-0", "prefill-L20-1", "decode-H20-0"}
    loop.scale([ScaleAction("prefill", "L20", 4, -1)])  # drains one, then it is gone
    clock.now = 90.0
    after = _series(server.scrape())
    assert len(set(after["pod"].drop_nulls())) == 2
    # The remaining pods' counters keep counting from where they were.
    assert _value(after, "dynamo_frontend_requests_total") == [45.0]
    server.close()


def test_only_metrics_is_served(run):
    start, result = run
    server = MetricsServer(FinishedRun(result, start)).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url.replace("/metrics", "/"), timeout=10)
        assert error.value.code == 404
    finally:
        server.close()


@needs_prometheus
def test_a_real_prometheus_scrapes_the_final_state(run, tmp_path):
    start, result = run
    server = MetricsServer(FinishedRun(result, start), speed=10_000.0).start()
    target = server.url.removeprefix("http://").removesuffix("/metrics")
    config = (
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: sim, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    try:
        with running_prometheus(tmp_path, config) as url:
            deadline = time.monotonic() + 60
            found: list[dict] = []
            while not found:
                if time.monotonic() > deadline:
                    pytest.fail((tmp_path / "prometheus.log").read_text()[-2000:])
                time.sleep(0.5)
                found = query(url, 'vllm:generation_tokens_total{pod="decode-H20-0"}')
            assert query(url, "up")[0]["value"][1] == "1"
            # Past the run's end (speed 10,000), a scrape shows the whole run.
            decode = result.instance_samples.filter(pl.col("instance_id") == "decode-H20-0")
            assert float(found[0]["value"][1]) == pytest.approx((decode["decode_tps"] * 15).sum())
            last = decode.filter(pl.col("ts") == pl.col("ts").max())
            util = query(url, 'DCGM_FI_DEV_GPU_UTIL{pod="decode-H20-0"}')
            assert len(util) == 4
            assert float(util[0]["value"][1]) == pytest.approx(100 * last["gpu_util_ratio"][0])
            assert {s["metric"]["role"] for s in query(url, "vllm:num_requests_running")} == {
                "prefill",
                "decode",
            }
    finally:
        server.close()
