"""The store's promises: idempotent partition writes, untouched neighbours, atomic failure."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from telemetry.schema import SchemaError
from telemetry.store import (
    DB_ENV_VAR,
    TableWrite,
    TelemetryStore,
    default_db_path,
    one_service,
)

MIDNIGHT = datetime(2023, 11, 17, tzinfo=UTC)


def load_frame(service: str, minutes: list[int], rate: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [MIDNIGHT + timedelta(minutes=m) for m in minutes],
            "interval_s": 60.0,
            "service": service,
            "request_rate_rps": rate,
            "input_tps": 1000.0 * rate,
            "output_tps": 200.0 * rate,
        }
    )


@pytest.fixture
def store(tmp_path):
    return TelemetryStore(tmp_path / "store.duckdb")


def test_rewriting_a_partition_replaces_it(store):
    store.write("service_load", load_frame("chat", [0, 1, 2]))
    store.write("service_load", load_frame("chat", [0, 1], rate=2.0))
    rows = store.read("service_load")
    assert rows.height == 2
    assert rows["request_rate_rps"].to_list() == [2.0, 2.0]


def test_partitions_are_service_by_utc_day(store):
    store.write("service_load", load_frame("chat", [-1, 0]))  # 23:59 and 00:00 UTC
    store.write("service_load", load_frame("code", [5]))
    store.write("service_load", load_frame("chat", [10], rate=3.0))  # replaces day 2 only
    rows = store.read("service_load").sort("service", "ts")
    assert rows.select("service", "day", "request_rate_rps").rows() == [
        ("chat", MIDNIGHT.date() - timedelta(days=1), 1.0),
        ("chat", MIDNIGHT.date(), 3.0),
        ("code", MIDNIGHT.date(), 1.0),
    ]
    assert rows["ts"].dtype.time_zone in {"UTC", "Etc/UTC"}


def test_a_bad_frame_writes_nothing(store):
    store.write("service_load", load_frame("chat", [0]))
    bad = load_frame("chat", [0]).with_columns(pl.lit(-5.0).alias("input_tps"))
    with pytest.raises(SchemaError, match="input_tps"):
        store.write("service_load", bad)
    assert store.read("service_load")["input_tps"].to_list() == [1000.0]


def test_a_failed_insert_rolls_back_the_delete(store):
    scores = pl.DataFrame({"service": ["chat"], "signal": ["decode_tps"], "r": [0.9]})
    store.write("signal_scores", scores, ("service",))
    wrong_type = pl.DataFrame({"service": ["chat"], "signal": ["decode_tps"], "r": ["high"]})
    with pytest.raises(duckdb.ConversionException):
        store.write("signal_scores", wrong_type, ("service",))
    assert store.read("signal_scores")["r"].to_list() == [0.9]


def test_derived_tables_need_partition_columns(store):
    with pytest.raises(ValueError, match="partition"):
        store.write("signal_scores", pl.DataFrame({"r": [1.0]}))
    with pytest.raises(ValueError, match=r"\['service'\]"):
        store.write("signal_scores", pl.DataFrame({"r": [1.0]}), ("service",))


def test_row_counts(store):
    assert store.row_counts() == {}
    store.write("service_load", load_frame("chat", [0, 1]))
    assert store.row_counts() == {"service_load": 2}


def test_derived_tables_evolve_additively(store):
    store.write("signal_scores", pl.DataFrame({"service": ["chat"], "r": [0.9]}), ("service",))
    store.write("signal_scores", pl.DataFrame({"service": ["code"], "rho": [0.5]}), ("service",))
    rows = store.read("signal_scores").sort("service")
    assert rows.select("service", "r", "rho").rows() == [("chat", 0.9, None), ("code", None, 0.5)]


def test_write_many_is_all_or_nothing(store):
    store.write("signal_scores", pl.DataFrame({"service": ["chat"], "r": [0.9]}), ("service",))
    with pytest.raises(duckdb.ConversionException):
        store.write_many(
            [
                TableWrite("service_load", load_frame("chat", [0, 1])),
                TableWrite(
                    "signal_scores", pl.DataFrame({"service": ["chat"], "r": ["x"]}), ("service",)
                ),
            ]
        )
    assert store.row_counts() == {"signal_scores": 1}  # the first write was rolled back too


def test_one_service_is_the_named_one_or_the_only_one():
    assert one_service(["chat", "chat"], None) == "chat"
    assert one_service(["chat", "code"], "code") == "code"
    with pytest.raises(ValueError, match=r"--service: the store holds \['chat', 'code'\]"):
        one_service(["code", "chat"], None)
    with pytest.raises(ValueError, match=r"specs are published for \['chat'\]"):
        one_service(["chat"], "code", held="specs are published for")


def test_ingested_telemetry_has_its_own_store_unless_one_is_chosen(monkeypatch):
    monkeypatch.delenv(DB_ENV_VAR, raising=False)
    assert default_db_path() == Path("out/heteroscale.duckdb")
    assert default_db_path(ingested=True) == Path("out/ingested/heteroscale.duckdb")
    monkeypatch.setenv(DB_ENV_VAR, "mine.duckdb")
    assert default_db_path() == default_db_path(ingested=True) == Path("mine.duckdb")


def _held(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the store's file open for ``seconds``."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(float(sys.argv[2]))",
            str(path),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_call_waits_for_another_process_to_let_go_of_the_file(store):
    store.write("service_load", load_frame("a", [0]))
    holder = _held(store.path, 1.5)
    try:
        written = store.write("service_load", load_frame("b", [0]))
    finally:
        holder.wait()
    assert written == 1
    assert sorted(store.read("service_load")["service"]) == ["a", "b"]


def test_a_call_fails_naming_the_holder_when_the_file_stays_held(tmp_path):
    store = TelemetryStore(tmp_path / "store.duckdb", lock_wait_s=0.3)
    store.write("service_load", load_frame("a", [0]))
    holder = _held(store.path, 5.0)
    try:
        with pytest.raises(duckdb.IOException, match="Could not set lock.*PID"):
            store.read("service_load")
    finally:
        holder.kill()
        holder.wait()
