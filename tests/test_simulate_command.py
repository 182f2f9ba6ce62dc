"""`heteroscale simulate` writes a trace's canonical telemetry into a store, or explains why not."""

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from simulator.paths import AZURE_CONV_CSV, MOONCAKE_CONV_SLICE_JSONL
from telemetry.ingest.exposition import parse

CLI = Path(sys.executable).with_name("heteroscale")

#: Mooncake prompts reach 120k tokens: prefill on H20 (TP 4) holds them, on L20 it does not.
LONG_CONTEXT_CLUSTER = """
model: Llama-3.1-70B
prefill_pools: [{gpu_type: H20, tp: 4, count: 4}]
decode_pools: [{gpu_type: H20, tp: 4, count: 2}]
"""


def simulate(tmp_path, trace, *options):
    command = [str(CLI), "simulate", "--trace", str(trace), "--out", str(tmp_path / "sim.duckdb")]
    return subprocess.run([*command, *options], capture_output=True, text=True)


def test_simulate_writes_canonical_tables(tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(LONG_CONTEXT_CLUSTER)
    done = simulate(
        tmp_path, MOONCAKE_CONV_SLICE_JSONL, "--format", "mooncake", "--cluster", cluster, "--json"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["requests"] == 500
    with duckdb.connect(str(tmp_path / "sim.duckdb"), read_only=True) as conn:
        for table, rows in summary["rows"].items():
            assert rows > 0
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == rows
        ttft, tpot = conn.execute(
            "SELECT quantile_cont(ttft_s, 0.9), quantile_cont((finish_s - first_token_s) "
            "/ (output_tokens - 1), 0.5) FILTER (WHERE output_tokens > 1) FROM request_outcomes"
        ).fetchone()
        util = dict(
            conn.execute(
                "SELECT role, avg(gpu_util_ratio) FROM instance_samples WHERE ready GROUP BY role"
            ).fetchall()
        )
    latency = summary["latency_s"]
    assert latency["ttft"]["p90"] == pytest.approx(ttft, abs=1e-6)
    assert latency["tpot"]["p50"] == pytest.approx(tpot, abs=1e-6)
    for quantiles in latency.values():
        assert quantiles["p50"] <= quantiles["p90"] <= quantiles["p99"]
    roles = summary["roles"]
    assert {role: figures["instances"] for role, figures in roles.items()} == {
        "decode": 2,
        "prefill": 4,
    }
    for role, figures in roles.items():
        assert figures["gpu_util_mean"] == pytest.approx(util[role], abs=1e-4)
        assert figures["gpu_util_mean"] <= figures["gpu_util_peak"] <= 1.0


def test_a_prompt_the_cluster_cannot_hold_is_a_clear_error(tmp_path):
    done = simulate(tmp_path, MOONCAKE_CONV_SLICE_JSONL, "--format", "mooncake")
    assert done.returncode == 2
    assert "exceed the KV capacity" in done.stderr  # the default cluster prefills on L20
    # It names the first such request and instances that would hold the largest prompt.
    assert "requests: row 98 (arriving at" in done.stderr
    assert "prefill instances holding" in done.stderr and "8 x L20" in done.stderr


def test_a_bad_trace_is_a_clear_error(tmp_path):
    bad = tmp_path / "trace.csv"
    bad.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,374\n")
    done = simulate(tmp_path, bad)
    assert done.returncode == 2
    assert "GeneratedTokens" in done.stderr and str(bad) in done.stderr
    assert not (tmp_path / "sim.duckdb").exists()


def test_serve_exposes_the_run_on_metrics_until_stopped(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("".join(AZURE_CONV_CSV.open().readlines()[:301]))  # header + 300 requests
    command = [str(CLI), "simulate", "--trace", str(trace), "--out", str(tmp_path / "sim.duckdb")]
    server = subprocess.Popen(
        [*command, "--json", "--serve", "127.0.0.1:0", "--speed", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        summary = json.loads(server.stdout.readline())
        with urllib.request.urlopen(summary["metrics_url"], timeout=30) as response:
            text = response.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
    raw = parse(text, "scrape", scrape=("sim", datetime.now(UTC)))
    samples = raw.named()
    requests = samples.filter(samples["metric"] == "dynamo_frontend_requests_total")
    assert requests["value"].to_list() == [300.0]  # the whole run, at that speed
    assert "vllm:num_requests_running" in set(samples["metric"])


def test_serve_needs_host_and_port(tmp_path):
    done = simulate(tmp_path, AZURE_CONV_CSV, "--serve", "9400")
    assert done.returncode == 2
    assert "HOST:PORT" in done.stderr
