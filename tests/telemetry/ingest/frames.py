"""Canonical source frames for ingestion tests: random but seeded, so every test is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD, conform

START = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2025, 3, 2, tzinfo=UTC)

#: (instance, role, gpu type, GPUs)
INSTANCES = (
    ("chat-prefill-0", "prefill", "L20", 2),
    ("chat-prefill-1", "prefill", "L20", 2),
    ("chat-decode-0", "decode", "H20", 1),
)


def source_frames(
    intervals: int = 8, interval_s: float = 15.0, seed: int = 0, start: datetime = START
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``instance_samples`` and ``service_load`` of three instances, random values."""
    rng = np.random.default_rng(seed)
    ts = [start + timedelta(seconds=i * interval_s) for i in range(intervals)]
    rows = []
    for instance, role, gpu, gpus in INSTANCES:
        total = rng.uniform(1000, 3000, intervals) if role == "prefill" else np.zeros(intervals)
        q50 = rng.uniform(0.01, 0.2, intervals)
        latency = {
            f"{name}_{q}_s": (
                list(q50 * factor)
                if (name == "ttft") == (role == "prefill")
                else [None] * intervals
            )
            for name in ("ttft", "tbt")
            for q, factor in (("p50", 1.0), ("p90", 2.0), ("p99", 4.0))
        }
        rows.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "interval_s": interval_s,
                    "service": "chat",
                    "role": role,
                    "instance_id": instance,
                    "gpu_type": gpu,
                    "gpus_per_instance": gpus,
                    "ready": rng.uniform(0, 1, intervals) > 0.2,
                    "gpu_util_ratio": rng.uniform(0, 1, intervals),
                    "sm_active_ratio": rng.uniform(0, 1, intervals),
                    "prefill_tps_cache_missed": total * rng.uniform(0.3, 1.0, intervals),
                    "prefill_tps_total": total,
                    "decode_tps": rng.uniform(10, 500, intervals),
                    **latency,
                    "queue_depth": rng.uniform(0, 8, intervals),
                    "running_requests": rng.uniform(0, 64, intervals),
                    "kv_usage_ratio": rng.uniform(0, 1, intervals),
                },
                schema_overrides={k: pl.Float64 for k in latency},
            )
        )
    load = pl.DataFrame(
        {
            "ts": ts,
            "interval_s": interval_s,
            "service": "chat",
            "request_rate_rps": rng.uniform(1, 10, intervals),
            "input_tps": rng.uniform(1000, 5000, intervals),
            "output_tps": rng.uniform(100, 500, intervals),
        }
    )
    return conform(pl.concat(rows), INSTANCE_SAMPLES), conform(load, SERVICE_LOAD)


def hourly_days_export(folder: Path, days: int = 3) -> tuple[Path, Path]:
    """``days`` whole days of hourly ``instance_samples`` from :data:`START` as one Parquet
    export, and the mapping file that reads it at that interval: what a telemetry source
    holds when consecutive days must pass the blocking gap check."""
    frames = [
        source_frames(intervals=24, interval_s=3600.0, seed=k, start=START + timedelta(days=k))[0]
        for k in range(days)
    ]
    export, mapping = folder / "export.parquet", folder / "mapping.yaml"
    pl.concat(frames).write_parquet(export)
    mapping.write_text("interval_s: 3600\n")
    return export, mapping
