"""`heteroscale study` ranks the signals of a store's telemetry, or says what to run first."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from signals import CLASSES
from simulator.paths import AZURE_CONV_CSV
from telemetry.ingest.load import SERVICE_LOAD_ORIGIN
from telemetry.store import TelemetryStore

CLI = Path(sys.executable).with_name("heteroscale")


def run(*arguments):
    return subprocess.run([str(CLI), *arguments], capture_output=True, text=True)


def test_an_empty_store_says_what_to_run_first(tmp_path):
    done = run("study", "--db", str(tmp_path / "none.duckdb"))
    assert done.returncode == 2
    assert "no telemetry" in done.stderr and "heteroscale run" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "none.duckdb").exists()


def test_the_study_of_a_simulated_hour(tmp_path):
    db = tmp_path / "sim.duckdb"
    simulated = run("simulate", "--trace", str(AZURE_CONV_CSV), "--out", str(db))
    assert simulated.returncode == 0, simulated.stderr
    done = run("study", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["offered_load"] == {"origin": "measured", "derived_days": []}
    rows = report["signals"]
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert {row["class"] for row in rows} <= set(CLASSES)
    assert all(row["reasons"] for row in rows)
    by_name = {(row["role"], row["signal"]): row for row in rows if row["gpu_type"] is None}
    # the paper's findings, from the computation: decode TPS tracks load, decode utilisation
    # stays busy at low load
    assert by_name[("decode", "decode_tps")]["class"] == "proportional"
    assert by_name[("decode", "gpu_util_ratio")]["class"] == "unusable"
    assert report["recommended"]["role"] in ("prefill", "decode")
    table = run("study", "--db", str(db))
    assert table.returncode == 0 and "recommended:" in table.stdout


def test_a_derived_offered_load_is_flagged_in_the_output(tmp_path):
    """Ingestion marks days whose offered load it derived from served work; the study says
    so, since such a load is a lower bound where the cluster saturated."""
    db = tmp_path / "sim.duckdb"
    assert run("simulate", "--trace", str(AZURE_CONV_CSV), "--out", str(db)).returncode == 0
    day = TelemetryStore(db).read("service_load")["ts"].dt.date().unique().item()
    origin = pl.DataFrame({"service": ["chat"], "day": [day], "origin": ["derived"]})
    TelemetryStore(db).write(SERVICE_LOAD_ORIGIN, origin, ("service", "day"))
    report = json.loads(run("study", "--db", str(db), "--json").stdout)
    assert report["offered_load"]["origin"] == "derived"
    assert report["offered_load"]["derived_days"] == [day.isoformat()]
    table = run("study", "--db", str(db))
    assert f"offered load on {day.isoformat()}: no offered-load series" in table.stdout
