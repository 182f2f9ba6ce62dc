"""Loads: tables in every layout, idempotent partitions, all or nothing, rows accounted for."""

import json
from datetime import timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from heteroscale.commands import ingest as ingest_command
from telemetry.ingest import (
    INGEST_LOG,
    QUARANTINE,
    IngestError,
    ingest,
    ingest_by_day,
    load_mapping,
    prepare,
)
from telemetry.ingest.exposition import write_openmetrics
from telemetry.store import TelemetryStore
from tests.telemetry.ingest.frames import NOW, START, source_frames


def _long(instances):
    """The canonical long layout: one (ts, instance, metric, value) per row."""
    metrics = ["gpu_util_ratio", "decode_tps", "queue_depth"]
    return instances.unpivot(
        on=metrics,
        index=["ts", "service", "instance_id", "role", "gpu_type", "gpus_per_instance"],
        variable_name="metric",
        value_name="value",
    )


def test_wide_csv_and_parquet_load_as_they_are(tmp_path, store):
    instances, load = source_frames()
    instances.write_csv(tmp_path / "instances.csv")
    load.write_parquet(tmp_path / "load.parquet")
    report = ingest(
        [str(tmp_path / "instances.csv"), str(tmp_path / "load.parquet")], store, now=NOW
    )
    assert report.rows_read == report.rows_loaded == instances.height + load.height
    got = store.read("instance_samples").drop("day").sort("instance_id", "ts")
    expected = instances.sort("instance_id", "ts")
    assert_allclose(got["decode_tps"], expected["decode_tps"])
    assert got["ready"].to_list() == expected["ready"].to_list()


def test_long_layout_with_a_mapping_for_what_it_lacks(tmp_path, store):
    instances, _ = source_frames()
    _long(instances).write_parquet(tmp_path / "long.parquet")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("constants: {sm_active_ratio: 0.0}\n")
    report = ingest([str(tmp_path / "long.parquet")], store, mapping=load_mapping(mapping), now=NOW)
    assert report.rows_loaded == report.rows_read == 3 * instances.height
    assert report.notes["constants"] == {"sm_active_ratio": 0.0}
    assert "prefill_tps_total" in report.notes["not_measured"]
    got = store.read("instance_samples").sort("instance_id", "ts")
    assert_allclose(got["decode_tps"], instances.sort("instance_id", "ts")["decode_tps"])


def test_a_users_own_columns_units_and_attributes_through_a_mapping(tmp_path, store):
    frame = pl.DataFrame(
        {
            "time": [int((START + timedelta(minutes=m)).timestamp() * 1000) for m in (0, 1, 2)],
            "host": ["gpu-node-7"] * 3,
            "busy_pct": [10.0, 55.0, 90.0],
            "kind": ["a", "a", "b"],
        }
    )
    frame.write_csv(tmp_path / "busy.csv")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "service: images\ninterval_s: 60\n"
        "instances: [{match: 'gpu-node-.*', role: colocated, gpu_type: A10}]\n"
        "files: [{glob: 'busy*.csv', layout: long, column: gpu_util_ratio, ts_unit: ms,\n"
        "  columns: {ts: time, instance_id: host, value: busy_pct},\n"
        "  units: {gpu_util_ratio: percent}, where: {kind: a}}]\n"
    )
    report = ingest([str(tmp_path / "busy.csv")], store, mapping=load_mapping(mapping), now=NOW)
    got = store.read("instance_samples").sort("ts")
    assert got["gpu_util_ratio"].to_list() == pytest.approx([0.10, 0.55])
    assert set(got["role"]) == {"colocated"} and set(got["gpu_type"]) == {"A10"}
    assert report.notes["busy.csv: rows outside `where`"] == 1


def test_reloading_replaces_partitions_and_quarantine(tmp_path, store):
    instances, load = source_frames()
    path = tmp_path / "scrape.om"
    path.write_text(write_openmetrics(instances, load))
    first = ingest([str(path)], store, now=NOW)
    counts = store.row_counts()
    second = ingest([str(path)], store, now=NOW)
    assert store.row_counts() == counts
    assert first.as_json() == second.as_json()
    assert store.read(INGEST_LOG).height == 1


def test_a_clean_reload_deletes_the_sources_earlier_quarantine(tmp_path, store):
    instances, _ = source_frames()
    dirty, other = tmp_path / "dirty.csv", tmp_path / "other.csv"
    broken = instances.with_columns(pl.col("decode_tps").cast(pl.String))
    broken = broken.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("n/a"))
        .otherwise("decode_tps")
        .alias("decode_tps")
    )
    broken.write_csv(dirty)
    broken.with_columns(pl.lit("b").alias("service")).write_csv(other)
    ingest([str(dirty)], store, now=NOW)
    ingest([str(other)], store, now=NOW)
    assert set(store.read(QUARANTINE)["source"]) == {str(dirty), str(other)}
    instances.write_csv(dirty)
    report = ingest([str(dirty)], store, now=NOW)
    assert report.rows_quarantined == 0
    assert store.read(QUARANTINE)["source"].to_list() == [str(other)]


def test_a_bad_source_writes_nothing(tmp_path, store):
    instances, _ = source_frames()
    instances.write_csv(tmp_path / "good.csv")
    (tmp_path / "bad.csv").write_text("")
    with pytest.raises(IngestError, match="bad.csv: the file is empty"):
        ingest([str(tmp_path / "good.csv"), str(tmp_path / "bad.csv")], store, now=NOW)
    assert store.row_counts() == {}


def test_nothing_loadable_is_an_error_but_the_reasons_are_kept(tmp_path, store):
    path = tmp_path / "x.om"
    path.write_text('vllm:num_requests_running{role="decode",service="chat"} 1 1740787200\n# EOF\n')
    with pytest.raises(IngestError, match="nothing loaded.*missing_instance"):
        ingest([str(path)], store, now=NOW)
    assert store.read(QUARANTINE)["reason"].to_list() == ["missing_instance"]


LINES = st.lists(
    st.one_of(
        st.sampled_from(["garbage", "x{", 'vllm:num_requests_running{pod="p"} NaN 1740787200']),
        st.builds(
            lambda pod, t, v: (
                f'kube_pod_status_ready{{pod="{pod}",condition="true"}} {v} {1740787200 + t}'
            ),
            st.sampled_from(["p0", "p1"]),
            st.integers(0, 120),
            st.sampled_from(["0", "1", "NaN", "+Inf", "0.5", "2", "-1"]),
        ),
        st.builds(
            lambda pod, t, v, name: (
                f'{name}{{pod="{pod}",role="decode",modelName="NVIDIA H20",'
                f'gpu="0"}} {v} {1740787200 + t}'
            ),
            st.sampled_from(["p0", "p1"]),
            st.integers(0, 120),
            st.integers(-5, 500),
            st.sampled_from(
                [
                    "vllm:generation_tokens_total",
                    "vllm:num_requests_waiting",
                    "DCGM_FI_DEV_GPU_UTIL",
                    "other_metric",
                ]
            ),
        ),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=LINES)
def test_every_row_read_is_loaded_skipped_or_quarantined(tmp_path, lines):
    path = tmp_path / "random.om"
    path.write_text("\n".join([*lines, "# EOF"]) + "\n")
    prepared = prepare([str(path)], service="chat", now=NOW)
    assert prepared.rows_read == len(lines)
    loaded, skipped = prepared.canonical.rows_loaded, prepared.rows_skipped
    assert loaded + skipped + prepared.rows_quarantined == prepared.rows_read


def test_the_cli_prints_the_report_and_fails_when_nothing_loads(tmp_path, capsys):
    instances, load = source_frames()
    path = tmp_path / "scrape.om"
    path.write_text(write_openmetrics(instances, load))
    db = tmp_path / "cli.duckdb"
    parser = _parser()
    args = parser.parse_args(["ingest", str(path), "--db", str(db), "--json"])
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "rows_read",
        "rows_loaded",
        "rows_skipped",
        "rows_quarantined",
        "skipped",
        "skipped_metrics",
        "quarantine_reasons",
        "partitions",
    } <= set(report)
    parts = ("rows_loaded", "rows_skipped", "rows_quarantined")
    assert report["rows_read"] == sum(report[k] for k in parts)
    assert report["rows_quarantined"] == 0
    assert sum(report["skipped"].values()) == report["rows_skipped"]
    empty = tmp_path / "empty.prom"
    empty.write_text("")
    args = parser.parse_args(["ingest", str(empty), "--db", str(db), "--json"])
    assert args.handler(args) == 1
    assert "empty.prom: no samples" in capsys.readouterr().err


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="heteroscale")
    ingest_command.register(parser.add_subparsers(dest="command"))
    return parser


TABLES = ("instance_samples", "service_load")


def test_a_multi_day_parquet_file_loads_one_day_per_transaction(tmp_path, store):
    days = [
        source_frames(intervals=6, seed=k, start=START + timedelta(days=k))[0] for k in (0, 1, 2)
    ]
    row = pl.int_range(pl.len())
    frame = pl.concat(days).with_columns(
        pl.when(row == 20).then(-1.0).otherwise("decode_tps").alias("decode_tps"),
        pl.when(row == 50).then(None).otherwise("ts").alias("ts"),  # a day-3 row, no time
    )
    path = tmp_path / "week.parquet"
    frame.write_parquet(path, row_group_size=7)
    reports = ingest_by_day([str(path)], store, now=NOW + timedelta(days=3))
    # The row without a time is read (and quarantined) with the first day.
    assert [r.rows_read for r in reports] == [
        days[0].height + 1,
        days[1].height,
        days[2].height - 1,
    ]
    # Each day writes its instance samples and the offered load derived from them.
    assert [[(p["table"], p["day"]) for p in r.partitions] for r in reports] == [
        [(table, (START + timedelta(days=k)).date().isoformat()) for table in TABLES]
        for k in (0, 1, 2)
    ]
    assert sum(r.rows_loaded for r in reports) == frame.height - 2
    bad = store.read(QUARANTINE).sort("location")
    assert bad.select("source", "location", "reason").rows() == [
        (f"{path} @ {START.date() + timedelta(days=1)}", "row 21", "negative_value"),
        (f"{path} @ {START.date()}", "row 51", "wrong_type"),
    ]
    counts = store.row_counts()
    assert counts[INGEST_LOG] == 3
    whole = ingest(
        [str(path)], TelemetryStore(tmp_path / "whole.duckdb"), now=NOW + timedelta(days=3)
    )
    assert whole.rows_loaded == frame.height - 2
    again = ingest_by_day([str(path)], store, now=NOW + timedelta(days=3))
    assert [r.as_json() for r in again] == [r.as_json() for r in reports]
    assert store.row_counts() == counts
    got = store.read("instance_samples").drop("day").sort("instance_id", "ts")
    expected = TelemetryStore(tmp_path / "whole.duckdb").read("instance_samples").drop("day")
    assert got.equals(expected.sort("instance_id", "ts"))


def test_the_cli_loads_by_day_with_the_same_totals_as_whole(tmp_path, capsys):
    days = [
        source_frames(intervals=6, seed=k, start=START + timedelta(days=k))[0] for k in (0, 1, 2)
    ]
    frame = pl.concat(days).with_columns(
        pl.when(pl.int_range(pl.len()) == 20).then(-1.0).otherwise("decode_tps").alias("decode_tps")
    )
    path = tmp_path / "week.parquet"
    frame.write_parquet(path, row_group_size=7)
    parser = _parser()
    reports = {}
    for name, flags in (("by_day", ["--by-day"]), ("whole", [])):
        db = tmp_path / f"{name}.duckdb"
        args = parser.parse_args(["ingest", str(path), "--db", str(db), "--json", *flags])
        assert args.handler(args) == 0
        reports[name] = json.loads(capsys.readouterr().out)
    by_day, whole = reports["by_day"], reports["whole"]
    totals = ("rows_read", "rows_loaded", "rows_quarantined", "quarantine_reasons")
    assert {k: by_day[k] for k in totals} == {k: whole[k] for k in totals}
    assert by_day["rows_read"] == frame.height and by_day["rows_quarantined"] == 1
    days_written = sorted({p["day"] for p in by_day["partitions"]})
    assert days_written == sorted({p["day"] for p in whole["partitions"]})
    assert len(days_written) == 3
