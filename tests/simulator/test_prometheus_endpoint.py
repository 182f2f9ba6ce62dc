"""The /metrics endpoint: every scrape reads like real vLLM, DCGM, kube-state-metrics and Dynamo
exporters (promtool accepts it, vLLM's own buckets, labels and value formats), shows the
simulator's telemetry, and a real Prometheus scraping it feeds ``heteroscale ingest`` with
nothing quarantined."""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose

from simulator import ClusterSpec, PoolSpec, default_trace, simulate
from simulator.closed_loop import ClosedLoopSimulation, ScaleAction
from simulator.cluster import LifecycleSpec
from simulator.prometheus_endpoint import (
    CONTENT_TYPE,
    ITL_BUCKETS_S,
    TTFT_BUCKETS_S,
    FinishedRun,
    MetricsServer,
    client_float,
    dcgm_value,
)
from simulator.traces import canonical_frame
from telemetry.ingest import Mapping, prepare
from telemetry.ingest.exposition import parse
from tests.prometheus_server import (
    needs_prometheus,
    promtool_check_metrics,
    query,
    running_prometheus,
)

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


def _lines(text: str, metric: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(metric)]


def test_a_scrape_reads_like_the_real_exporters(run):
    start, result = run
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), speed=2.0, clock=clock).start()
    try:
        content_type, first = _scrape(server)
        clock.now = 30.0  # 60 simulated seconds: four intervals
        _, text = _scrape(server)
    finally:
        server.close()
    assert content_type == CONTENT_TYPE
    # The first scrape already shows every pod (at the end of the first interval).
    assert set(_series(first)["pod"].drop_nulls()) == {
        "prefill-L20-0",
        "prefill-L20-1",
        "decode-H20-0",
    }
    # Every family has its HELP and TYPE, vLLM's histograms its own buckets in order.
    for family in ("vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"):
        assert f"# TYPE {family} histogram" in text and f"# HELP {family} " in text
    pod = 'pod="decode-H20-0"'
    for family, bounds in (
        ("vllm:time_to_first_token_seconds", TTFT_BUCKETS_S),
        ("vllm:inter_token_latency_seconds", ITL_BUCKETS_S),
    ):
        buckets = [line for line in _lines(text, f"{family}_bucket") if pod in line]
        les = [line.split(',le="')[1].split('"')[0] for line in buckets]
        assert les == [client_float(b) for b in bounds] + ["+Inf"]
        counts = [float(line.rsplit(" ", 1)[1]) for line in buckets]
        assert counts == sorted(counts), "cumulative"
    # vLLM's labels, DCGM's value formats, kube-state-metrics' three conditions.
    running = _lines(text, "vllm:num_requests_running{")[0]
    assert running.startswith('vllm:num_requests_running{model_name="chat",engine="0",')
    series = _series(text)
    latest = result.instance_samples.filter(pl.col("ts") == pl.lit(start) + pl.duration(seconds=45))
    assert latest.height == 3
    for row in latest.iter_rows(named=True):
        name = row["instance_id"]
        util = [line for line in _lines(text, "DCGM_FI_DEV_GPU_UTIL{") if f'pod="{name}"' in line]
        assert len(util) == row["gpus_per_instance"]
        assert all(u.endswith(f" {round(100 * row['gpu_util_ratio'])}") for u in util)
        active = [line for line in _lines(text, "DCGM_FI_PROF_SM_ACTIVE") if f'"{name}"' in line]
        assert all(a.endswith(" " + dcgm_value(row["sm_active_ratio"], False)) for a in active)
        assert _value(
            series, "DCGM_FI_DEV_GPU_UTIL", pod=name, modelName=f"NVIDIA {row['gpu_type']}"
        )
        for metric, column in [
            ("vllm:num_requests_running", "running_requests"),
            ("vllm:num_requests_waiting", "queue_depth"),
            ("vllm:kv_cache_usage_perc", "kv_usage_ratio"),
        ]:
            assert_allclose(_value(series, metric, pod=name, role=row["role"]), [row[column]])
        ready = {
            c: _value(series, "kube_pod_status_ready", pod=name, condition=c)
            for c in ("true", "false", "unknown")
        }
        assert ready == {"true": [1.0], "false": [0.0], "unknown": [0.0]}
        mine = result.instance_samples.filter(
            (pl.col("instance_id") == name) & (pl.col("ts") <= latest["ts"][0])
        )
        for metric, column in [
            ("vllm:generation_tokens_total", "decode_tps"),
            ("vllm:prompt_tokens_total", "prefill_tps_total"),
        ]:
            total = (mine[column] * INTERVAL_S).sum()
            assert _value(series, metric, pod=name) == [round(total)]
        with_ttft = mine["ttft_p50_s"].is_not_null().sum()
        count = _value(series, "vllm:time_to_first_token_seconds_count", pod=name)
        inf = _value(series, "vllm:time_to_first_token_seconds_bucket", pod=name, le="+Inf")
        assert count == inf == [100.0 * with_ttft]
    offered = result.service_load.filter(pl.col("ts") <= latest["ts"][0])
    requests = _value(series, "dynamo_frontend_requests_total", model="chat")
    assert requests == [round((offered["request_rate_rps"] * INTERVAL_S).sum())]


def test_a_finished_runs_counters_grow_between_intervals_as_real_ones_do(run):
    """Between interval ends the token and request counters move at the interval's mean rate,
    so a ``rate()`` window does not depend on how many interval ends it holds; gauges and
    pods stay at the latest completed interval."""
    start, result = run
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), clock=clock)
    decode = result.instance_samples.filter(pl.col("instance_id") == "decode-H20-0").sort("ts")
    ends = np.arange(decode.height + 1) * INTERVAL_S
    generated = np.concatenate([[0.0], np.cumsum(decode["decode_tps"] * INTERVAL_S)])
    offered = np.concatenate(
        [[0.0], np.cumsum(result.service_load.sort("ts")["request_rate_rps"] * INTERVAL_S)]
    )
    for now in np.arange(15.0, 120.0, 2.5):
        clock.now = now
        series = _series(server.scrape())
        shown = _value(series, "vllm:generation_tokens_total", pod="decode-H20-0")
        assert shown == [round(np.interp(now, ends, generated))], now
        requests = _value(series, "dynamo_frontend_requests_total", model="chat")
        assert requests == [round(np.interp(now, ends, offered))], now
        completed = decode.filter(pl.col("ts") == start + timedelta(seconds=now // 15 * 15 - 15))
        running = _value(series, "vllm:num_requests_running", pod="decode-H20-0")
        assert_allclose(running, completed["running_requests"], err_msg=str(now))
    server.close()


@needs_prometheus
def test_promtool_accepts_every_scrape(run):
    start, result = run
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), clock=clock)
    try:
        for now in (0.0, 15.0, 100.0, 10_000.0):  # first, early, middle, after the end
            clock.now = now
            assert promtool_check_metrics(server.scrape()) == [], now
    finally:
        server.close()


def _bucket_of(value: float, bounds: tuple[float, ...]) -> tuple[float, float]:
    """The (lower, upper] bounds of the histogram bucket holding ``value``."""
    edges = (0.0, *bounds, math.inf)
    k = next(i for i in range(1, len(edges)) if value <= edges[i])
    return edges[k - 1], edges[k]


def test_scrapes_ingest_back_to_the_simulators_telemetry(tmp_path):
    """Scrape files (``<target>-<unix seconds>.prom``), each stamped in the middle of the
    interval it shows, load with no flag (the service is vLLM's model_name) and nothing
    quarantined: gauges as they were, token rates to the token, latency quantiles inside the
    vLLM bucket that holds the simulator's quantile."""
    start = datetime(2024, 1, 1, tzinfo=UTC)  # on the loader's 15 s grid
    result = simulate(default_trace().requests.head(500), _cluster(), service="chat", start=start)
    clock = Clock()
    server = MetricsServer(FinishedRun(result, start), clock=clock)
    for k in range(1, 9):
        clock.now = k * INTERVAL_S  # intervals 0 to k - 1 complete: shows interval k - 1
        stamp = start.timestamp() + (k - 0.5) * INTERVAL_S
        (tmp_path / f"sim-{stamp:.1f}.prom").write_text(server.scrape())
    server.close()
    prepared = prepare([str(tmp_path)], interval_s=INTERVAL_S)
    got = prepared.canonical
    assert got.quarantine.height == 0, got.quarantine.to_dicts()
    assert set(got.skipped["reason"]) == {
        "edge_interval",
        "histogram_sum_count",
        "readiness_condition",
        "unused_metric",
    }
    # Interval 0 has no earlier scrape to take counter increases from: an edge, skipped.
    expected = result.instance_samples.filter(
        pl.col("ts").is_between(start + timedelta(seconds=15), start + timedelta(seconds=105))
    )
    paired = expected.join(got.instance_samples, on=["instance_id", "ts"], suffix="_got")
    assert paired.height == expected.height == 3 * 7
    assert set(paired["service_got"]) == {"chat"}
    for column in ("queue_depth", "running_requests", "kv_usage_ratio"):
        assert_allclose(paired[f"{column}_got"], paired[column], rtol=1e-9, err_msg=column)
    assert_allclose(paired["gpu_util_ratio_got"], paired["gpu_util_ratio"], atol=0.005)
    assert_allclose(paired["sm_active_ratio_got"], paired["sm_active_ratio"], atol=1e-6)
    for column in ("prefill_tps_total", "decode_tps"):  # counters print whole tokens
        assert_allclose(paired[f"{column}_got"], paired[column], atol=1 / INTERVAL_S)
    for prefix, bounds in (("ttft", TTFT_BUCKETS_S), ("tbt", ITL_BUCKETS_S)):
        for q in ("p50", "p90", "p99"):
            column = f"{prefix}_{q}_s"
            assert paired[f"{column}_got"].is_null().equals(paired[column].is_null()), column
            for true, read in paired.drop_nulls(column).select(column, f"{column}_got").rows():
                lower, upper = _bucket_of(true, bounds)
                assert lower <= read <= min(upper, bounds[-1]), (column, true, read)
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


def test_a_deployment_asks_for_its_starting_and_ready_pods_not_withdrawn_ones():
    """kube-state-metrics' view of a scale-out (the starting pod is asked for, not ready) and
    of a scale-in (the withdrawn decode pod, still draining its long generations, is exported
    but no longer asked for)."""
    requests = canonical_frame(
        arrival_s=[float(k) for k in range(0, 300, 2)],
        input_tokens=[500] * 150,
        output_tokens=[3000] * 150,
    )
    cluster = _cluster(prefill=2)
    cluster = replace(cluster, decode_pools=(replace(cluster.decode_pools[0], count=2),))
    loop = ClosedLoopSimulation(
        requests,
        cluster,
        service="s",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        lifecycle=LifecycleSpec(default_startup_s=60.0),
    )
    clock = Clock()
    server = MetricsServer(loop, clock=clock)
    metrics = ("kube_deployment_spec_replicas", "kube_deployment_status_replicas_ready")

    def scrape() -> tuple[dict[str, tuple[float, ...]], set[str]]:
        series = _series(server.scrape())
        replicas = {
            role: tuple(
                _value(series, m, namespace="llm", deployment=f"s-{role}")[0] for m in metrics
            )
            for role in ("prefill", "decode")
        }
        return replicas, set(series["pod"].drop_nulls())

    clock.now = 30.0
    assert scrape()[0] == {"prefill": (2, 2), "decode": (2, 2)}
    loop.scale([ScaleAction("prefill", "L20", 4, 1), ScaleAction("decode", "H20", 4, -1)])
    clock.now = 60.0
    replicas, pods = scrape()
    assert replicas == {"prefill": (3, 2), "decode": (1, 1)}
    assert {"prefill-L20-2", "decode-H20-1"} <= pods  # starting; draining
    clock.now = 120.0
    assert scrape()[0] == {"prefill": (3, 3), "decode": (1, 1)}
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


def _scrape_config(server: MetricsServer) -> str:
    target = server.url.removeprefix("http://").removesuffix("/metrics")
    return (
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: sim, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )


@needs_prometheus
def test_a_real_prometheus_scrapes_the_final_state(run, tmp_path):
    start, result = run
    server = MetricsServer(FinishedRun(result, start), speed=10_000.0).start()
    try:
        with running_prometheus(tmp_path, _scrape_config(server)) as url:
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
            assert float(found[0]["value"][1]) == round((decode["decode_tps"] * 15).sum())
            last = decode.filter(pl.col("ts") == pl.col("ts").max())
            util = query(url, 'DCGM_FI_DEV_GPU_UTIL{pod="decode-H20-0"}')
            assert len(util) == 4
            assert float(util[0]["value"][1]) == round(100 * last["gpu_util_ratio"][0])
            assert {s["metric"]["role"] for s in query(url, "vllm:num_requests_running")} == {
                "prefill",
                "decode",
            }
    finally:
        server.close()


@needs_prometheus
def test_a_real_prometheus_scrape_ingests_with_nothing_quarantined(run, tmp_path):
    """serve -> a real Prometheus scrapes every second -> ``heteroscale ingest`` of its HTTP
    API with no service given: every row loads or is skipped, none is quarantined."""
    start, result = run
    # One simulated interval per wall second, scraped every second; read at 1 s intervals.
    server = MetricsServer(FinishedRun(result, start), speed=INTERVAL_S).start()
    try:
        with running_prometheus(tmp_path, _scrape_config(server)) as url:
            first = datetime.now(UTC)
            time.sleep(14)
            report = prepare(
                [f"prometheus+{url}"],
                interval_s=1.0,
                start=first + timedelta(seconds=4),
                end=datetime.now(UTC) - timedelta(seconds=1),
                mapping=Mapping(prometheus={"window_s": 3}),
            )
    finally:
        server.close()
    got = report.canonical
    assert got.quarantine.height == 0, got.quarantine.to_dicts()
    samples = got.instance_samples
    assert samples.height >= 3 * 6
    assert set(samples["service"]) == {"chat"} == set(got.service_load["service"])
    attributes = samples.select("instance_id", "role", "gpu_type", "gpus_per_instance").unique()
    assert sorted(attributes.rows()) == [
        ("decode-H20-0", "decode", "H20", 4),
        ("prefill-L20-0", "prefill", "L20", 4),
        ("prefill-L20-1", "prefill", "L20", 4),
    ]
    assert got.service_load.height > 0 and report.derived_load.height == 0
