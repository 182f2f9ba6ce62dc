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


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory):
    """The live rules test's policy, starting cluster and load swing, as files."""
    from policies.spec import dump
    from tests.policies.test_rules_on_prometheus import CLUSTER, CONFIG, swing_trace
    from tests.policies.test_spec import make_spec, policy_inputs

    folder = tmp_path_factory.mktemp("policy")
    spec = make_spec(inputs=policy_inputs(pd_ratio=1.5, m=675.0), config=CONFIG)
    (folder / "policy.yaml").write_text(dump(spec))
    (folder / "cluster.yaml").write_text(CLUSTER)
    (folder / "swing.csv").write_text(swing_trace())
    return folder


def test_a_policy_scales_the_cluster_and_its_decisions_are_stored(tmp_path, policy_files):
    done = simulate(
        tmp_path,
        policy_files / "swing.csv",
        *("--cluster", policy_files / "cluster.yaml", "--policy", policy_files / "policy.yaml"),
        *("--startup-s", "30", "--json"),
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    with duckdb.connect(str(tmp_path / "sim.duckdb"), read_only=True) as db:
        decisions = db.sql(
            "SELECT next_prefill, next_decode, reason FROM scaling_decisions"
        ).fetchall()
        decode_counts = db.sql(
            "SELECT count(*) FROM instance_samples WHERE role = 'decode' GROUP BY ts ORDER BY ts"
        ).fetchall()
    assert rows["scaling_decisions"] == len(decisions) > 0
    reasons = {reason.split(":")[0] for _, _, reason in decisions}
    assert {"scale in", "scale out"} <= reasons
    # 8 decode instances at 24 requests/s; the policy withdrew some at 6 and added back at 8.
    assert decode_counts[0][0] == 8 and min(n for (n,) in decode_counts) < 8


def test_a_policy_curated_for_other_pools_is_refused(tmp_path, policy_files):
    cluster = tmp_path / "h20.yaml"
    cluster.write_text(LONG_CONTEXT_CLUSTER)
    done = simulate(
        tmp_path,
        policy_files / "swing.csv",
        *("--cluster", cluster, "--policy", policy_files / "policy.yaml"),
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "curated for prefill L20 x4, decode H20 x4" in done.stderr
    assert "the cluster runs decode H20 x4, prefill H20 x4" in done.stderr
    assert not (tmp_path / "sim.duckdb").exists()


def test_startup_and_topology_need_a_policy(tmp_path):
    done = simulate(tmp_path, AZURE_CONV_CSV, "--startup-s", "30")
    assert done.returncode == 2 and "--policy" in done.stderr
    done = simulate(tmp_path, AZURE_CONV_CSV, "--startup-s", "nan")
    assert done.returncode == 2 and "want a number >= 0" in done.stderr
