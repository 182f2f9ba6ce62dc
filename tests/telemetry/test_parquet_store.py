"""The Parquet mirror answers as the DuckDB store does, reads one partition's file for a
partition's rows, and replaces a partition whole (local disk; object storage is documented,
not tested: no network here)."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

import telemetry.parquet_store as parquet_store
from telemetry.parquet_store import ParquetStore
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TelemetryStore
from tests.canonical_frames import instance_samples, service_load

HOURS = 30  # hourly intervals from 2025-03-01 00:00 UTC: two days
DAYS = (date(2025, 3, 1), date(2025, 3, 2))


def telemetry(service: str, scale: float = 1.0) -> dict[str, pl.DataFrame]:
    load = [scale * (100.0 + h) for h in range(HOURS)]
    return {
        INSTANCE_SAMPLES: instance_samples(
            role="decode",
            instances=2,
            intervals=HOURS,
            service=service,
            interval_s=3600.0,
            decode_tps=load,
            ttft_p99_s=[None, *[0.5] * (HOURS - 1)],
        ),
        SERVICE_LOAD: service_load(load, service=service, interval_s=3600.0),
    }


def store_of(path: Path, *services: str, scale: float = 1.0) -> TelemetryStore:
    store = TelemetryStore(path)
    for service in services:
        for table, frame in telemetry(service, scale).items():
            store.write(table, frame)
    return store


def ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order: neither store keeps one."""
    return frame.sort(frame.columns)


def parquet_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_round_trip_reads_what_the_store_reads(tmp_path):
    store = store_of(tmp_path / "store.duckdb", "chat", "123", "team/a b=c%")
    scores = pl.DataFrame(
        {"service": ["chat", "123"], "signal": ["decode_tps"] * 2, "r": [0.9, 0.7]}
    )
    store.write("signal_scores", scores, ("service",))
    parquet = ParquetStore(tmp_path / "parquet")

    assert parquet.export(store) == store.row_counts()
    assert parquet.row_counts() == store.row_counts()
    for table in (INSTANCE_SAMPLES, SERVICE_LOAD, "signal_scores"):
        stored, mirrored = store.read(table), parquet.read(table)
        assert mirrored.schema == stored.schema
        assert ordered(mirrored).equals(ordered(stored))
    assert parquet.read(INSTANCE_SAMPLES)["ts"].dtype == pl.Datetime("us", "UTC")
    partitions = parquet.distinct(SERVICE_LOAD, ["service", "day"])
    assert ordered(partitions).equals(ordered(store.distinct(SERVICE_LOAD, ["service", "day"])))
    files = parquet_files(tmp_path / "parquet")
    assert "service_load/service=team%2Fa%20b%3Dc%25/day=2025-03-02/data.parquet" in files
    assert "signal_scores/data.parquet" in files


def test_a_partition_filter_reads_only_that_partitions_file(tmp_path):
    store = store_of(tmp_path / "store.duckdb", "chat", "code")
    parquet = ParquetStore(tmp_path / "parquet")
    parquet.export(store, [SERVICE_LOAD])
    other = tmp_path / "parquet" / SERVICE_LOAD / "service=code" / "day=2025-03-01" / "data.parquet"
    other.write_bytes(b"not parquet")  # any read that opens it fails

    one_day = {"service": "chat", "day": DAYS[0]}
    assert ordered(parquet.read(SERVICE_LOAD, one_day)).equals(
        ordered(store.read(SERVICE_LOAD, one_day))
    )
    assert parquet.read(SERVICE_LOAD, {"service": "chat"}).height == HOURS
    assert parquet.read(SERVICE_LOAD, {"day": DAYS[1]}).height == 2 * (HOURS - 24)
    with pytest.raises(Exception, match="data.parquet"):
        parquet.read(SERVICE_LOAD)


def test_exporting_again_replaces_the_partitions_it_holds_and_keeps_the_others(tmp_path):
    parquet = ParquetStore(tmp_path / "parquet")
    parquet.export(store_of(tmp_path / "both.duckdb", "chat", "code"))
    parquet.export(store_of(tmp_path / "chat.duckdb", "chat", scale=2.0))

    load = parquet.read(SERVICE_LOAD).sort("service", "ts")
    chat, code = (load.filter(pl.col("service") == s)["output_tps"] for s in ("chat", "code"))
    assert chat.to_list() == [2.0 * (100.0 + h) for h in range(HOURS)]
    assert code.to_list() == [100.0 + h for h in range(HOURS)]
    assert not [f for f in parquet_files(tmp_path / "parquet") if "tmp" in f]


def test_a_failed_export_keeps_the_old_partition_and_no_temporary_file(tmp_path, monkeypatch):
    parquet = ParquetStore(tmp_path / "parquet")
    parquet.export(store_of(tmp_path / "old.duckdb", "chat"))
    before = ordered(parquet.read(SERVICE_LOAD))

    select_where = parquet_store.select_where

    def failing(source, where):  # each row raises, once the partition's file is open
        sql, params = select_where(source, where)
        return f"SELECT *, error('disk full ' || service) AS e FROM ({sql})", params

    monkeypatch.setattr(parquet_store, "select_where", failing)
    with pytest.raises(Exception, match="disk full"):
        parquet.export(store_of(tmp_path / "new.duckdb", "chat", scale=2.0), [SERVICE_LOAD])
    monkeypatch.undo()
    assert ordered(parquet.read(SERVICE_LOAD)).equals(before)
    assert not [f for f in parquet_files(tmp_path / "parquet") if "tmp" in f]


def test_bad_input_is_refused_in_one_clear_line(tmp_path):
    store = store_of(tmp_path / "store.duckdb", "chat")
    parquet = ParquetStore(tmp_path / "parquet")
    parquet.export(store, [SERVICE_LOAD])
    with pytest.raises(ValueError, match="instance_samples was never exported"):
        parquet.read(INSTANCE_SAMPLES)
    assert parquet.distinct(INSTANCE_SAMPLES, ["service"]) is None
    with pytest.raises(ValueError, match=r"has no tables \['scaling_decisions'\]"):
        parquet.export(store, ["scaling_decisions"])

    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        ParquetStore(a_file).export(store)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        ParquetStore(a_file).read(SERVICE_LOAD)


def test_a_relative_root_counts_its_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parquet = ParquetStore("./parquet/")  # DuckDB's glob answers "parquet/..."
    parquet.export(store_of(tmp_path / "store.duckdb", "chat"))
    assert parquet.row_counts() == {INSTANCE_SAMPLES: 2 * HOURS, SERVICE_LOAD: HOURS}
