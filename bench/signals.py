"""The signal study at fleet scale: a week of 1,000 instances at 15 s, beside plain pandas.

Run ``.venv/bin/python -m bench.signals [--instances N --days D --workdir DIR]``. Prints one
line per phase and, last, one JSON line with every figure.

The target (issue 12, "Speed"): the full study, ``signals.study_table`` at 60 s windows then
``signals.classify``, on a week of 1,000 instances at 15 s (40.3 million wide rows) in at most
60 s on 2 cores with a peak RSS of at most 6 GB.

Data. A synthetic week is written first, one Parquet file per UTC day, and is not timed: one
service, 70% of the instances prefill on L20 and 30% decode on H20, about 1% of the samples
from instances that are not ready. A diurnal load (trough at 04:00 UTC, peak at 16:00,
weekends at 75%) drives every metric the way the paper describes a P/D pool (§5.3.2): the
throughputs follow the load, decode GPU utilisation and SM activity stay near saturation, the
latencies and queues bend up near capacity (a cliff), and the prefix-cache hit rate drifts
on its own, so the cache-missed prefill throughput (the work) departs from the offered prompt
tokens. Every day is checked with ``conform`` before it is written, so the files are canonical.

Phases, each in its own child process, whose own peak RSS (``VmHWM``) is reported:

- ``study``: aggregation, ``signals.role_series`` over ``pl.scan_parquet`` of the week (the
  40 million rows stream through one polars query and never sit in memory whole); then the
  statistics, ``study_table`` and ``classify`` on the aggregated series. ``study_table``
  takes instance samples only, so the role series is handed to it as one pseudo-instance per
  role and interval (:func:`as_instances`), which it aggregates back to the same series. The
  peak RSS is reset between the two (``/proc/self/clear_refs``), so each has its own. A study
  this large runs its candidates in one worker process per core, so the statistics' peak is
  bounded by this process's plus one per core of the largest worker's, and their CPU time
  includes the workers'; the study's peak is the larger of the two phases'. Then, timed
  apart, the same statistics in this process alone (``workers=1``), which must give the same
  table: the parallel gain beside the rest. Last, the core statistics alone (Pearson,
  Spearman, R², dynamic range, each with a 500-replicate block-bootstrap interval) through
  ``signals``' own functions, the work the pandas baseline does.
- ``pandas``: the obvious pandas route to those core statistics. ``pd.read_parquet`` of one
  day into one DataFrame, boolean-mask the ready rows, ``groupby`` sums, means and counts,
  for each day in turn (a week in one frame would need about 7 times the day's memory, more
  than a shared 24 GB machine has to spare). Then 60 s windows by ``groupby`` on the floored
  time, a join with the load and, per candidate, ``Series.corr`` (Pearson and Spearman),
  R² as r², the dynamic range by ``nsmallest``/``nlargest`` and a 500-replicate moving-block
  bootstrap through ``iloc`` (block ``ceil(n ** (1/3))``).

``ratio`` is the pandas time over ours for the same work (aggregation plus core statistics);
``full_study_ratio`` is the pandas time over the whole study's, which computes far more
(RESET and knee bootstrap, stationarity tests, lead/lag, breach AUC). The parent checks that
both routes aggregate to the same series and the same correlations. Timings on a shared
machine are noisy; compare ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from joblib.externals.loky import get_reusable_executor
from scipy.signal import lfilter

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from signals import (  # noqa: E402
    ROLE_LOAD,
    SIGNALS,
    SUM_SIGNALS,
    classify,
    paired_series,
    role_series,
    study_table,
)
from signals.bootstrap import block_bootstrap_cis  # noqa: E402
from signals.statistics import HEADLINE, correlations, dynamic_range  # noqa: E402
from telemetry.schema import (  # noqa: E402
    INSTANCE_SAMPLES,
    INSTANCE_SAMPLES_SCHEMA,
    LATENCY_COLUMNS,
    SERVICE_LOAD,
    conform,
)

#: A Monday, so the week's two weekend days are its last two.
START = datetime(2025, 3, 3, tzinfo=UTC)
INTERVAL_S = 15.0
DAY_INTERVALS = round(24 * 3600 / INTERVAL_S)
WINDOW_S = 60.0
SERVICE = "chat"
#: Latency SLO the study scores breaches against; the synthetic peak crosses both.
SLO = {"ttft_p99_s": 2.0, "tbt_p99_s": 0.1}
#: Role, GPU type and GPUs per instance of each pool; prefill takes PREFILL_SHARE of instances.
POOLS = {"prefill": ("L20", 4), "decode": ("H20", 4)}
PREFILL_SHARE = 0.7
#: Offered requests/s per instance of the fleet at the week's peak, and mean request lengths
#: (tokens).
PEAK_RPS_PER_INSTANCE = 0.45
PROMPT_TOKENS, OUTPUT_TOKENS = 1800.0, 280.0
#: Tokens/s one instance computes at full utilisation, sized so the peak reaches ~85%.
CAPACITY = {"prefill": 1000.0, "decode": 560.0}
NOT_READY = 0.01
#: The core statistics the pandas baseline computes too; each gets a bootstrap interval.
CORE = ("pearson", "spearman", "r_squared", "dynamic_range")
RESAMPLES = 500
TARGET = {"total_s": 60.0, "peak_rss_gb": 6.0}


def load_curve(intervals: int, instances: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The service's offered load per interval, and the prefix-cache hit rate it meets.

    The peak scales with the fleet, so any fleet size runs at the same utilisation.

    Computed for the whole span at once (a few arrays of ``intervals`` floats), so every day
    file continues the same curve.
    """
    rng = np.random.default_rng([seed, 1_000_000])
    seconds = np.arange(intervals) * INTERVAL_S
    hour = seconds / 3600 % 24
    weekday = (seconds // 86400 + START.weekday()) % 7
    diurnal = 0.12 + 0.88 * (0.5 - 0.5 * np.cos(2 * np.pi * (hour - 4) / 24)) ** 1.3
    drift = np.exp(lfilter([1.0], [1.0, -0.995], rng.normal(0, 0.005, intervals)))
    level = diurnal * np.where(weekday >= 5, 0.75, 1.0) * drift
    rate = (
        PEAK_RPS_PER_INSTANCE * instances * level * (1 + rng.normal(0, 0.03, intervals)).clip(0.5)
    )
    days = seconds / 86400
    return {
        "request_rate_rps": rate,
        "input_tps": rate * PROMPT_TOKENS * (1 + 0.1 * np.sin(2 * np.pi * days / 3.3)),
        "output_tps": rate * OUTPUT_TOKENS * (1 + 0.1 * np.cos(2 * np.pi * days / 2.7)),
        "hit_rate": 0.45 + 0.15 * np.sin(2 * np.pi * seconds / (9 * 3600)),
    }


def timestamps(first: int, count: int) -> pl.Series:
    """Interval starts ``first .. first + count - 1`` from :data:`START`, UTC."""
    start = np.datetime64(START.replace(tzinfo=None), "us")
    step = np.timedelta64(round(INTERVAL_S * 1e6), "us")
    return pl.Series("ts", start + (first + np.arange(count)) * step).dt.replace_time_zone("UTC")


def service_load(curve: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """Canonical ``service_load`` of :func:`load_curve`."""
    n = curve["request_rate_rps"].size
    frame = pl.DataFrame(
        {
            "ts": timestamps(0, n),
            "interval_s": np.full(n, INTERVAL_S),
            "service": SERVICE,
            **{c: curve[c] for c in ("request_rate_rps", "input_tps", "output_tps")},
        }
    )
    return conform(frame, SERVICE_LOAD)


def pool_sizes(instances: int) -> dict[str, int]:
    prefill = round(instances * PREFILL_SHARE)
    return {"prefill": prefill, "decode": instances - prefill}


def pool_metrics(role: str, offered: np.ndarray, hit: np.ndarray, size: int, rng) -> dict:
    """Per-instance metrics of one pool over some intervals: ``(intervals, size)`` arrays.

    ``offered`` is the pool's offered tokens/s per interval (prompt tokens for prefill,
    output tokens for decode); each ready instance serves its share, scaled by a fixed
    per-instance weight (uneven routing) and per-sample noise.
    """
    t = offered.size
    ready = rng.random((t, size)) >= NOT_READY
    weight = rng.lognormal(0, 0.1, size)
    share = offered[:, None] / np.maximum(ready.sum(axis=1), 1)[:, None] * weight
    served = share * (1 + rng.normal(0, 0.05, (t, size))).clip(0.5)

    def noisy(value, sigma):
        return value * rng.lognormal(0, sigma, (t, size))

    def gauge(value, sigma):
        return np.clip(value + rng.normal(0, sigma, (t, size)), 0, 1)

    zeros = np.zeros((t, size))
    if role == "prefill":
        missed = served * (1 - hit[:, None])
        rho = np.minimum(missed / CAPACITY[role], 0.98)
        gpu = gauge(0.02 + 0.95 * rho, 0.02)
        ttft = noisy(0.2 + 0.15 * rho / (1 - rho), 0.1)
        metrics = {
            "gpu_util_ratio": gpu,
            "sm_active_ratio": gauge(0.9 * gpu, 0.02),
            "prefill_tps_cache_missed": missed,
            "prefill_tps_total": served,
            "decode_tps": zeros,
            "ttft_p50_s": ttft,
            "ttft_p90_s": noisy(1.7 * ttft, 0.05),
            "ttft_p99_s": noisy(2.6 * ttft, 0.1),
            "queue_depth": noisy(rho**2 / (1 - rho), 0.2),
            "running_requests": noisy(4 * rho, 0.1),
            "kv_usage_ratio": gauge(0.02 + 0.3 * rho, 0.01),
        }
    else:
        rho = np.minimum(served / CAPACITY[role], 0.98)
        tbt = noisy(0.025 + 0.01 * rho + 0.12 * np.maximum(rho - 0.7, 0) ** 2 / 0.09, 0.05)
        metrics = {
            "gpu_util_ratio": gauge(0.9 + 0.07 * rho, 0.01),
            "sm_active_ratio": gauge(0.78 + 0.18 * rho, 0.015),
            "prefill_tps_cache_missed": zeros,
            "prefill_tps_total": zeros,
            "decode_tps": served,
            "tbt_p50_s": tbt,
            "tbt_p90_s": noisy(1.3 * tbt, 0.05),
            "tbt_p99_s": noisy(1.8 * tbt, 0.1),
            "queue_depth": noisy(30 * np.maximum(rho - 0.75, 0) + 0.05, 0.2),
            "running_requests": noisy(150 * rho, 0.05),
            "kv_usage_ratio": gauge(0.05 + 0.85 * rho, 0.02),
        }
    # An instance that is not ready serves nothing and measures no latency; a ready one
    # occasionally has no latency sample in an interval.
    for name, values in metrics.items():
        if name in LATENCY_COLUMNS:
            metrics[name] = np.where(ready & (rng.random((t, size)) >= 0.002), values, np.nan)
        else:
            metrics[name] = np.where(ready, values, 0.0)
    return {"ready": ready, **metrics}


def instance_samples(
    first: int, count: int, instances: int, curve: Mapping[str, np.ndarray], seed: int = 0
) -> pl.DataFrame:
    """Canonical ``instance_samples`` of intervals ``first .. first + count - 1``, in time
    order (instance order within an interval), deterministic for a given ``first``."""
    rng = np.random.default_rng([seed, first])
    span = slice(first, first + count)
    hit = curve["hit_rate"][span]
    pools = []
    for role, size in pool_sizes(instances).items():
        if not size:
            continue
        offered = curve["input_tps" if role == "prefill" else "output_tps"][span]
        metrics = pool_metrics(role, offered, hit, size, rng)
        gpu_type, gpus = POOLS[role]
        pools.append(
            pl.DataFrame(
                {
                    "ts": timestamps(first, count).gather(np.repeat(np.arange(count), size)),
                    "interval_s": np.full(count * size, INTERVAL_S),
                    "service": SERVICE,
                    "role": role,
                    "instance_id": pl.Series([f"{role}-{i:04d}" for i in range(size)]).gather(
                        np.tile(np.arange(size), count)
                    ),
                    "gpu_type": gpu_type,
                    "gpus_per_instance": np.full(count * size, gpus, dtype=np.int32),
                    **{name: values.ravel() for name, values in metrics.items()},
                },
                nan_to_null=True,
            )
        )
    frame = pl.concat(pools, how="diagonal").sort("ts", maintain_order=True)
    return conform(frame, INSTANCE_SAMPLES)


def write_dataset(root: Path, instances: int, days: int) -> int:
    """The week's files under ``root``: ``instance_samples/<day>.parquet`` and
    ``service_load.parquet``. One day in memory at a time; returns the instance rows."""
    curve = load_curve(days * DAY_INTERVALS, instances)
    (root / "instance_samples").mkdir(parents=True, exist_ok=True)
    service_load(curve).write_parquet(root / "service_load.parquet")
    rows = 0
    for day in range(days):
        frame = instance_samples(day * DAY_INTERVALS, DAY_INTERVALS, instances, curve)
        frame.write_parquet(
            root / "instance_samples" / f"{(START + timedelta(days=day)).date()}.parquet"
        )
        rows += frame.height
        del frame
    return rows


def as_instances(series: pl.DataFrame, gpu_types: Mapping[str, str]) -> pl.DataFrame:
    """A role series as ``instance_samples`` of one ready pseudo-instance per role.

    ``study_table`` accepts instance samples only; ``role_series`` of this frame gives back
    ``series``' signals exactly (the sum and mean of one value is that value), so the study
    of it equals the study of the instances behind ``series``. Only ``instances`` and
    ``ready_instances`` differ, and the study reads neither. Valid only where each role runs
    on one GPU type (``gpu_types``, by role): with several, the study would also want each
    type's own series, which a role series does not hold.
    """
    return series.with_columns(
        instance_id=pl.concat_str("service", pl.lit("/"), "role"),
        gpu_type=pl.col("role").replace_strict(dict(gpu_types)),
        gpus_per_instance=pl.lit(1, pl.Int32),
        ready=pl.lit(True),
    ).select(list(INSTANCE_SAMPLES_SCHEMA))


def own_peak_rss_gb() -> float:
    """This process's peak RSS (``VmHWM``) since exec or the last :func:`reset_peak_rss`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    raise OSError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    """Start ``VmHWM`` again from the current RSS (Linux >= 4.0), so a phase has its own."""
    Path("/proc/self/clear_refs").write_text("5")


def cpu_seconds() -> float:
    """User + system CPU of this process and of its ended children (the study's worker
    processes); beside wall time it shows contention and parallelism."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def workers_peak_rss_gb() -> float:
    """The largest peak RSS of any ended child of this process (the study's workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def core_statistics(paired: pl.DataFrame, candidates: list[tuple[str, str]]) -> dict:
    """The core statistics of each whole-role (role, signal) of ``paired``
    (:func:`signals.paired_series`) with ``signals``' own functions, nulls dropped as
    ``study_table`` drops them; ``{"role/signal": {statistic: value}}``."""
    out, core = {}, {name: HEADLINE[name] for name in CORE}
    for role, signal in candidates:
        load_column = ROLE_LOAD[role]
        whole = (pl.col("role") == role) & pl.col("gpu_type").is_null()
        group = paired.filter(whole).sort("ts").drop_nulls([signal, load_column])
        x, y = group[load_column].to_numpy(), group[signal].to_numpy()
        both = correlations(x, y)
        row = {
            "pearson": both.pearson,
            "spearman": both.spearman,
            "r_squared": HEADLINE["r_squared"](x, y),
            "dynamic_range": dynamic_range(x, y),
        }
        for name, interval in block_bootstrap_cis(x, y, core, resamples=RESAMPLES).items():
            row[f"{name}_ci"] = interval
        out[f"{role}/{signal}"] = row
    return out


def study_child(root: Path) -> dict:
    """The full study on the files under ``root``, timed by phase."""
    figures = {}
    started, cpu = time.perf_counter(), cpu_seconds()
    series = role_series(pl.scan_parquet(root / "instance_samples" / "*.parquet"))
    figures["aggregation_s"] = time.perf_counter() - started
    figures["aggregation_peak_rss_gb"] = own_peak_rss_gb()
    figures["aggregation_cpu_s"] = cpu_seconds() - cpu
    series.write_parquet(root / "series.parquet")
    reset_peak_rss()

    started, cpu = time.perf_counter(), cpu_seconds()
    load = pl.read_parquet(root / "service_load.parquet")
    pseudo = as_instances(series, {role: gpu for role, (gpu, _) in POOLS.items()})
    table = classify(study_table(pseudo, load, window_s=WINDOW_S, slo=SLO))
    figures["statistics_s"] = time.perf_counter() - started
    figures["statistics_peak_rss_gb"] = own_peak_rss_gb()
    # The study leaves its worker processes for the next call; ended, they count as children.
    get_reusable_executor().shutdown(wait=True)
    figures["statistics_cpu_s"] = cpu_seconds() - cpu
    figures["statistics_worker_peak_rss_gb"] = workers_peak_rss_gb()
    table.write_parquet(root / "study.parquet")

    started, cpu = time.perf_counter(), cpu_seconds()
    alone = classify(study_table(pseudo, load, window_s=WINDOW_S, slo=SLO, workers=1))
    figures["statistics_one_process_s"] = time.perf_counter() - started
    figures["statistics_one_process_cpu_s"] = cpu_seconds() - cpu
    figures["one_process_same_table"] = alone.equals(table)

    candidates = table.filter(pl.col("gpu_type").is_null()).select("role", "signal").rows()
    started = time.perf_counter()
    core = core_statistics(paired_series(pseudo, load, window_s=WINDOW_S), candidates)
    figures["core_statistics_s"] = time.perf_counter() - started
    figures["candidates"] = len(candidates)
    figures["classes"] = dict(table["class"].value_counts().sort("class").iter_rows())
    figures["class_of"] = {
        f"{r}/{s}": c for r, s, c in table.select("role", "signal", "class").rows()
    }
    figures["top"] = table.sort("rank").select("role", "signal", "class").row(0, named=True)
    (root / "core.json").write_text(json.dumps(core))
    return figures


def pandas_child(root: Path) -> dict:
    """Aggregation and core statistics the obvious way with pandas, timed by phase."""
    import pandas as pd

    keys = ["ts", "service", "role"]
    means = [c for c in SIGNALS if c not in SUM_SIGNALS]
    started, cpu = time.perf_counter(), cpu_seconds()
    parts = []
    for path in sorted((root / "instance_samples").glob("*.parquet")):
        frame = pd.read_parquet(path)
        ready = frame[frame["ready"]]
        part = frame.groupby(keys).agg(
            interval_s=("interval_s", "max"), instances=("instance_id", "size")
        )
        part = part.join(ready.groupby(keys).size().rename("ready_instances"))
        part = part.join(ready.groupby(keys)[list(SUM_SIGNALS)].sum())
        part = part.join(ready.groupby(keys)[means].mean())
        part[["ready_instances", *SUM_SIGNALS]] = part[["ready_instances", *SUM_SIGNALS]].fillna(0)
        parts.append(part)
        del frame, ready
    series = pd.concat(parts).reset_index()
    aggregation_s = time.perf_counter() - started
    aggregation_peak = own_peak_rss_gb()

    started = time.perf_counter()
    series["window"] = series["ts"].dt.floor(f"{WINDOW_S:.0f}s")
    windows = series.groupby(["window", "service", "role"])[list(SIGNALS)].mean().reset_index()
    load = pd.read_parquet(root / "service_load.parquet")
    load["window"] = load["ts"].dt.floor(f"{WINDOW_S:.0f}s")
    load = load.groupby(["window", "service"])[["request_rate_rps", "input_tps", "output_tps"]]
    paired = windows.merge(load.mean().reset_index(), on=["window", "service"])
    candidates = [
        (role, signal)
        for role in sorted(paired["role"].unique())
        for signal in SIGNALS
        if paired.loc[paired["role"] == role, signal].notna().any()
    ]

    def stats(pair: pd.DataFrame, x: str, y: str) -> dict:
        k = max(1, math.floor(len(pair) / 5))
        high = pair.nlargest(k, x)[y].mean()
        r = pair[x].corr(pair[y])
        return {
            "pearson": r,
            "spearman": pair[x].corr(pair[y], method="spearman"),
            "r_squared": r**2,
            "dynamic_range": pair.nsmallest(k, x)[y].mean() / high if high else math.nan,
        }

    core = {}
    rng = np.random.default_rng(0)
    for role, signal in candidates:
        x = ROLE_LOAD[role]
        pair = paired.loc[paired["role"] == role].sort_values("window")[[x, signal]].dropna()
        row = stats(pair, x, signal)
        n = len(pair)
        block = math.ceil(n ** (1 / 3))
        replicates = []
        for _ in range(RESAMPLES):
            starts = rng.integers(0, n - block + 1, math.ceil(n / block))
            rows = (starts[:, None] + np.arange(block)).ravel()[:n]
            replicates.append(stats(pair.iloc[rows], x, signal))
        replicates = pd.DataFrame(replicates)
        for name in CORE:
            row[f"{name}_ci"] = tuple(replicates[name].quantile([0.025, 0.975]))
        core[f"{role}/{signal}"] = row
    statistics_s = time.perf_counter() - started
    series.drop(columns="window").to_parquet(root / "pandas_series.parquet")
    (root / "pandas_core.json").write_text(json.dumps(core))
    return {
        "aggregation_s": aggregation_s,
        "aggregation_peak_rss_gb": aggregation_peak,
        "statistics_s": statistics_s,
        "peak_rss_gb": own_peak_rss_gb(),
        "cpu_s": cpu_seconds() - cpu,
        "candidates": len(candidates),
    }


def run_child(kind: str, root: Path) -> dict:
    child = subprocess.run(
        [sys.executable, "-m", "bench.signals", "--child", kind, str(root)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise RuntimeError(f"the {kind} phase failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def agreement(root: Path) -> dict:
    """How far the pandas route's series and correlations are from ours (should be ~0)."""
    ours = pl.read_parquet(root / "series.parquet")
    theirs = pl.read_parquet(root / "pandas_series.parquet").with_columns(
        pl.col("ts").dt.convert_time_zone("UTC")
    )
    joined = ours.join(theirs, on=["ts", "service", "role"], suffix="_pd")
    relative = [
        ((pl.col(c) - pl.col(f"{c}_pd")).abs() / pl.col(c).abs().clip(1e-9)).max()
        for c in ("instances", "ready_instances", *SIGNALS)
    ]
    core = json.loads((root / "core.json").read_text())
    pandas_core = json.loads((root / "pandas_core.json").read_text())
    shared = sorted(set(core) & set(pandas_core))
    differences = [
        abs(core[k][s] - pandas_core[k][s])
        for k in shared
        for s in ("pearson", "spearman", "dynamic_range")
        if core[k][s] is not None and not math.isnan(core[k][s])
    ]
    return {
        "series_rows": ours.height,
        "series_rows_matched": joined.height,
        "series_max_relative_difference": max(joined.select(relative).row(0)),
        "candidates_compared": len(shared),
        "core_max_abs_difference": max(differences, default=math.nan),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def measure(args) -> dict:
    machine = {"cores": len(os.sched_getaffinity(0)), "cpu": cpu_model()}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        rows = write_dataset(root, args.instances, args.days)
        generate_s = time.perf_counter() - started
        files = sum(p.stat().st_size for p in (root / "instance_samples").glob("*.parquet"))
        print(f"generated {rows} rows ({files / 1e9:.2f} GB) in {generate_s:.0f} s", flush=True)
        study = run_child("study", root)
        print(f"study: {study}", flush=True)
        baseline = run_child("pandas", root)
        print(f"pandas: {baseline}", flush=True)
        checks = agreement(root)
        print(f"agreement: {checks}", flush=True)
    total_s = study["aggregation_s"] + study["statistics_s"]
    # The study's workers run beside its process, at most one per core.
    statistics_peak = (
        study["statistics_peak_rss_gb"] + machine["cores"] * study["statistics_worker_peak_rss_gb"]
    )
    peak = max(study["aggregation_peak_rss_gb"], statistics_peak)
    pandas_s = baseline["aggregation_s"] + baseline["statistics_s"]
    core_s = study["aggregation_s"] + study["core_statistics_s"]
    return {
        "rows": rows,
        "instances": args.instances,
        "days": args.days,
        "aggregation_s": study["aggregation_s"],
        "statistics_s": study["statistics_s"],
        "total_s": total_s,
        "peak_rss_gb": peak,
        "pandas_s": pandas_s,
        "pandas_peak_rss_gb": baseline["peak_rss_gb"],
        "ratio": pandas_s / core_s,
        "machine": machine,
        "date": date.today().isoformat(),
        "ratio_basis": "pandas_s / (aggregation_s + core_statistics_s): the same work",
        "full_study_ratio": pandas_s / total_s,
        "aggregation_ratio": baseline["aggregation_s"] / study["aggregation_s"],
        "core_statistics_s": study["core_statistics_s"],
        "aggregation_peak_rss_gb": study["aggregation_peak_rss_gb"],
        "statistics_peak_rss_gb": study["statistics_peak_rss_gb"],
        "statistics_worker_peak_rss_gb": study["statistics_worker_peak_rss_gb"],
        "statistics_peak_rss_bound_gb": statistics_peak,
        "aggregation_cpu_s": study["aggregation_cpu_s"],
        "statistics_cpu_s": study["statistics_cpu_s"],
        "statistics_one_process_s": study["statistics_one_process_s"],
        "statistics_one_process_cpu_s": study["statistics_one_process_cpu_s"],
        "one_process_same_table": study["one_process_same_table"],
        "pandas_aggregation_s": baseline["aggregation_s"],
        "pandas_statistics_s": baseline["statistics_s"],
        "pandas_aggregation_peak_rss_gb": baseline["aggregation_peak_rss_gb"],
        "pandas_read": "one day per DataFrame, the days in turn",
        "candidates": study["candidates"],
        "classes": study["classes"],
        "class_of": study["class_of"],
        "top": study["top"],
        "window_s": WINDOW_S,
        "windows": round(rows / args.instances * INTERVAL_S / WINDOW_S),
        "parquet_gb": files / 1e9,
        "generate_s": generate_s,
        "agreement": checks,
        "target": TARGET,
        "target_met": total_s <= TARGET["total_s"] and peak <= TARGET["peak_rss_gb"],
        "load_average": [load_before, os.getloadavg()[0]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workdir", help="where the week's files go (default: the temp dir)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, root = args.child
        figures = study_child(Path(root)) if kind == "study" else pandas_child(Path(root))
        print(json.dumps(figures))
        return
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
