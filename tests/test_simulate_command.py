"""`heteroscale simulate` writes a trace's canonical telemetry into a store, or explains why not."""

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from simulator.paths import MOONCAKE_CONV_SLICE_JSONL

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


def test_a_prompt_the_cluster_cannot_hold_is_a_clear_error(tmp_path):
    done = simulate(tmp_path, MOONCAKE_CONV_SLICE_JSONL, "--format", "mooncake")
    assert done.returncode == 2
    assert "exceed the KV capacity" in done.stderr  # the default cluster prefills on L20


def test_a_bad_trace_is_a_clear_error(tmp_path):
    bad = tmp_path / "trace.csv"
    bad.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,374\n")
    done = simulate(tmp_path, bad)
    assert done.returncode == 2
    assert "GeneratedTokens" in done.stderr and str(bad) in done.stderr
    assert not (tmp_path / "sim.duckdb").exists()
