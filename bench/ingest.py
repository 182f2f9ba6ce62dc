"""Ingestion throughput: canonical Parquet/CSV and exposition text, each beside plain pandas.

Run ``.venv/bin/python bench/ingest.py [--instances N --intervals T --exposition-instances M]
[--week-instances W --week-days D]``. Prints one line per measurement and, last, one JSON line
with every figure.

Units. A *sample* of a table is one metric value (a wide row of ``instance_samples`` carries
14); rows/s is given too. A *sample* of exposition text is one sample line. "prepare" is read,
parse, derive, check and conform (what every load does before it writes); "load" adds the
DuckDB write through ``TelemetryStore``. The pandas baselines do the obvious equivalent: read,
parse times to UTC, check for NaN, negatives and ratios above 1, drop duplicates and (for
"load") insert into DuckDB; for exposition text, a vectorised regex parse and per-series
counter differences, less than the real reader does (no histograms, no quarantine).

Week scale: W instances for D days at 15 s in the wide layout, one Parquet file written in time
order (as an export grows), generated before any timing. ``ingest_by_day`` loads it one UTC day
per transaction; the pandas baseline reads each day with a row filter, checks it as above and
inserts it. Each runs in a child process, whose own peak RSS (``VmHWM``) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetry.ingest import ingest, ingest_by_day, prepare  # noqa: E402
from telemetry.ingest.exposition import write_openmetrics  # noqa: E402
from telemetry.schema import INSTANCE_METRIC_COLUMNS, INSTANCE_SAMPLES, conform  # noqa: E402
from telemetry.store import TelemetryStore  # noqa: E402

START = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2025, 4, 1, tzinfo=UTC)
RATIOS = ["gpu_util_ratio", "sm_active_ratio", "kv_usage_ratio"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def wide_frame(
    instances: int, intervals: int, seed: int = 0, start: datetime = START
) -> pl.DataFrame:
    """Canonical ``instance_samples`` of ``instances`` decode pods, random values."""
    rng = np.random.default_rng(seed)
    n = instances * intervals
    ts = pl.datetime_range(
        start, start + timedelta(seconds=15 * (intervals - 1)), "15s", time_zone="UTC", eager=True
    )
    frame = pl.DataFrame(
        {
            "ts": pl.concat([ts] * instances),
            "interval_s": np.full(n, 15.0),
            "service": "chat",
            "role": "decode",
            "instance_id": np.repeat([f"pod-{i}" for i in range(instances)], intervals),
            "gpu_type": "H20",
            "gpus_per_instance": np.full(n, 8, dtype=np.int32),
            "ready": np.ones(n, dtype=bool),
            **{c: rng.uniform(0, 1, n) for c in INSTANCE_METRIC_COLUMNS},
        }
    )
    return conform(frame, INSTANCE_SAMPLES)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def pandas_prepare(path: Path) -> pd.DataFrame:
    return pandas_check(pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path))


def pandas_check(frame: pd.DataFrame) -> pd.DataFrame:
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    metrics = list(INSTANCE_METRIC_COLUMNS)
    values = frame[metrics]
    bad = ~np.isfinite(values.fillna(0.0)).all(axis=1) | (values < 0).any(axis=1)
    bad |= (frame[RATIOS] > 1).any(axis=1)
    frame = frame[~bad]
    return frame.drop_duplicates(["ts", "service", "instance_id"])


def pandas_load(path: Path, db: Path) -> None:
    with duckdb.connect(str(db)) as conn:
        conn.register("prepared", pandas_prepare(path))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS instance_samples AS SELECT * FROM prepared LIMIT 0"
        )
        conn.execute("INSERT INTO instance_samples SELECT * FROM prepared")


SAMPLE = r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(\S+))?$"


def pandas_exposition(path: Path) -> pd.DataFrame:
    lines = pd.Series(path.read_text().splitlines())
    lines = lines[~lines.str.startswith("#")]
    parts = lines.str.extract(SAMPLE)
    parts.columns = ["metric", "labels", "value", "ts"]
    parts["value"] = pd.to_numeric(parts["value"], errors="coerce")
    parts["ts"] = pd.to_datetime(pd.to_numeric(parts["ts"]), unit="s", utc=True)
    parts = parts.sort_values(["metric", "labels", "ts"])
    parts["increase"] = parts.groupby(["metric", "labels"])["value"].diff()
    return parts


DAY_INTERVALS = 24 * 3600 // 15


def write_week(path: Path, instances: int, days: int) -> int:
    """One Parquet file of ``days`` days, in time order; returns its rows."""
    writer = None
    rows = 0
    for day in range(days):
        frame = wide_frame(instances, DAY_INTERVALS, seed=day, start=START + timedelta(days=day))
        table = frame.sort("ts").to_arrow(compat_level=pl.CompatLevel.oldest())
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
        rows += frame.height
    writer.close()
    return rows


def week_child(kind: str, path: Path, db: Path) -> None:
    """Load the week file in this (child) process; print elapsed seconds, where they went (ours)
    and own peak RSS."""
    spent: dict[str, float] = {}
    started = time.perf_counter()
    if kind == "ours":
        _time_phases(spent)
        reports = ingest_by_day([str(path)], TelemetryStore(db), now=NOW)
        loaded = sum(r.rows_loaded for r in reports)
    else:
        loaded = 0
        days = pd.read_parquet(path, columns=["ts"])["ts"].dt.floor("D").unique()
        with duckdb.connect(str(db)) as conn:
            for day in sorted(days):
                part = pandas_check(
                    pd.read_parquet(
                        path, filters=[("ts", ">=", day), ("ts", "<", day + pd.Timedelta(days=1))]
                    )
                )
                conn.register("part", part)
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS instance_samples AS SELECT * FROM part LIMIT 0"
                )
                conn.execute("INSERT INTO instance_samples SELECT * FROM part")
                loaded += len(part)
    elapsed = time.perf_counter() - started
    result = {"seconds": elapsed, "peak_rss_mb": own_peak_rss_mb(), "rows_loaded": loaded}
    print(json.dumps({**result, "cpu_seconds": cpu_seconds(), **spent}))


def _time_phases(spent: dict[str, float]) -> None:
    """Accumulate wall time of each phase of a load: read and check (``prepare_s``), the whole
    write (``write_s``) and, inside it, the store's conform and DuckDB transaction
    (``store_write_s``). Bench-only instrumentation: wraps the functions ``ingest`` calls."""
    from telemetry.ingest import load

    def wrapped(name, fn):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return run

    load.prepare = wrapped("prepare_s", load.prepare)
    load.write = wrapped("write_s", load.write)
    TelemetryStore.write_many = wrapped("store_write_s", TelemetryStore.write_many)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far; beside wall time it shows contention."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def own_peak_rss_mb() -> float:
    """This process's peak RSS since exec (``VmHWM``; ``ru_maxrss`` also counts the parent's
    memory at fork, so it overstates a child's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_week(tmp: Path, instances: int, days: int) -> dict:
    path = tmp / "week.parquet"
    generated, rows = timed(lambda: write_week(path, instances, days))
    print(f"week: {rows} rows generated in {generated:.0f} s", flush=True)
    figures = {"rows": rows, "samples": rows * len(INSTANCE_METRIC_COLUMNS)}
    figures["file_mb"] = path.stat().st_size / 1e6
    for kind in ("ours", "pandas"):
        db = tmp / f"week-{kind}.duckdb"
        child = subprocess.run(
            [sys.executable, __file__, "--week-child", kind, str(path), str(db)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        assert result["rows_loaded"] == rows, result
        figures[kind] = {
            **result,
            "rows_per_s": rows / result["seconds"],
            "db_mb": db.stat().st_size / 1e6,
        }
        db.unlink()
        print(f"week {kind}: {figures[kind]}", flush=True)
    figures["speedup_vs_pandas"] = figures["pandas"]["seconds"] / figures["ours"]["seconds"]
    return figures


def measure(args) -> dict:
    figures: dict = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frame = wide_frame(args.instances, args.intervals)
        rows, values = frame.height, frame.height * len(INSTANCE_METRIC_COLUMNS)
        figures["table_rows"] = rows
        for kind in ("parquet", "csv"):
            path = tmp / f"instances.{kind}"
            frame.write_parquet(path) if kind == "parquet" else frame.write_csv(path)
            cpu_before = cpu_seconds()
            ours, prepared = timed(lambda p=path: prepare([str(p)], now=NOW))
            prepare_cpu = cpu_seconds() - cpu_before
            assert prepared.canonical.rows_loaded == rows
            theirs, _ = timed(lambda p=path: pandas_prepare(p))
            db = tmp / f"{kind}.duckdb"
            ours_load, _ = timed(lambda p=path, d=db: ingest([str(p)], TelemetryStore(d), now=NOW))
            theirs_load, _ = timed(lambda p=path, d=tmp / f"{kind}-pd.duckdb": pandas_load(p, d))
            figures[kind] = {
                "prepare_s": ours,
                "prepare_cpu_s": prepare_cpu,
                "prepare_samples_per_s": values / ours,
                "prepare_rows_per_s": rows / ours,
                "pandas_prepare_samples_per_s": values / theirs,
                "prepare_speedup_vs_pandas": theirs / ours,
                "load_samples_per_s": values / ours_load,
                "load_rows_per_s": rows / ours_load,
                "pandas_load_samples_per_s": values / theirs_load,
                "load_speedup_vs_pandas": theirs_load / ours_load,
            }
            print(f"{kind}: {figures[kind]}", flush=True)
        small = wide_frame(args.exposition_instances, args.exposition_intervals, seed=1)
        path = tmp / "backfill.om"
        path.write_text(write_openmetrics(small))
        lines = sum(1 for line in path.read_text().splitlines() if not line.startswith("#"))
        cpu_before = cpu_seconds()
        ours, prepared = timed(lambda: prepare([str(path)], now=NOW))
        prepare_cpu = cpu_seconds() - cpu_before
        assert prepared.rows_read == lines
        theirs, _ = timed(lambda: pandas_exposition(path))
        figures["exposition"] = {
            "samples": lines,
            "prepare_s": ours,
            "prepare_cpu_s": prepare_cpu,
            "prepare_samples_per_s": lines / ours,
            "pandas_parse_and_diff_samples_per_s": lines / theirs,
            "speedup_vs_pandas": theirs / ours,
        }
        print(f"exposition: {figures['exposition']}", flush=True)
        if args.week_instances:
            figures["week"] = measure_week(tmp, args.week_instances, args.week_days)
    figures["load_average_at_end"] = os.getloadavg()[0]
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--intervals", type=int, default=2880, help="15 s intervals (12 h)")
    parser.add_argument("--exposition-instances", type=int, default=20)
    parser.add_argument("--exposition-intervals", type=int, default=240)
    parser.add_argument("--week-instances", type=int, default=1000, help="0 skips the week")
    parser.add_argument("--week-days", type=int, default=7)
    parser.add_argument(
        "--week-child", nargs=3, metavar=("KIND", "FILE", "DB"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.week_child:
        kind, path, db = args.week_child
        week_child(kind, Path(path), Path(db))
        return
    figures = measure(args)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
