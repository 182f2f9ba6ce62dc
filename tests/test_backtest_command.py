"""`heteroscale backtest` curates and backtests every policy on a trace, or explains why not."""

import json
import subprocess
import sys
from pathlib import Path

from policies.registry import POLICIES
from simulator.paths import AZURE_CONV_CSV, MOONCAKE_CONV_SLICE_JSONL

CLI = Path(sys.executable).with_name("heteroscale")


def backtest(*options):
    return subprocess.run([str(CLI), "backtest", *options], capture_output=True, text=True)


def test_a_users_trace_is_curated_on_its_first_part_and_evaluated_on_the_rest():
    done = backtest("--trace", str(AZURE_CONV_CSV), "--format", "azure", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    scenario = report["scenario"]
    assert scenario["curation_start"] < scenario["evaluation_start"] < scenario["evaluation_end"]
    rows = {row["policy"]: row for row in report["policies"]}
    expected = set(POLICIES) - {"periodic"}
    assert set(rows) == expected
    assert "periodic" in report["skipped"]  # half an hour of history has no daily schedule
    for row in rows.values():
        assert 0 <= row["avg_gpu_util"] <= 1 and 0 <= row["slo_attainment"] <= 1
        assert row["gpu_hours"] > 0 and row["scaling_actions"] >= 0
    assert report["curation"]["pd_ratio"] > 1


def test_an_unknown_policy_is_one_line_and_exit_2():
    done = backtest("--trace", str(AZURE_CONV_CSV), "--policies", "heteroscale,nope")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown policies ['nope']" in done.stderr


def test_an_unreachable_slo_says_so():
    done = backtest("--trace", str(MOONCAKE_CONV_SLICE_JSONL), "--format", "mooncake")
    assert done.returncode == 2
    assert "the SLO is out of reach" in done.stderr and "Traceback" not in done.stderr


def test_a_trace_and_a_servegen_service_together_are_refused():
    done = backtest("--trace", str(AZURE_CONV_CSV), "--servegen", "m-mid")
    assert done.returncode == 2
    assert "not both" in done.stderr and "Traceback" not in done.stderr
