"""The canonical telemetry model: what every source (simulator, Prometheus, files) must produce.

Two tables. ``instance_samples`` holds one row per serving instance per fixed interval; the
signal study, the policies and the dashboards read nothing else about instances.
``service_load`` holds the offered load of a service per interval, the ground truth a
signal is judged against. Column meanings and units: docs/telemetry-schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

ROLES = ("prefill", "decode", "colocated")

INSTANCE_SAMPLES = "instance_samples"
SERVICE_LOAD = "service_load"

#: Identity of a sample: which instance, which interval.
INSTANCE_KEY_COLUMNS: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "interval_s": pl.Float64(),
    "service": pl.String(),
    "role": pl.String(),
    "instance_id": pl.String(),
    "gpu_type": pl.String(),
    "gpus_per_instance": pl.Int32(),
    "ready": pl.Boolean(),
}

#: The candidate autoscaling signals and the gauges that explain them (all per instance).
INSTANCE_METRIC_COLUMNS: dict[str, pl.DataType] = {
    "gpu_util_ratio": pl.Float64(),
    "sm_active_ratio": pl.Float64(),
    "prefill_tps_cache_missed": pl.Float64(),
    "prefill_tps_total": pl.Float64(),
    "decode_tps": pl.Float64(),
    "ttft_p50_s": pl.Float64(),
    "ttft_p90_s": pl.Float64(),
    "ttft_p99_s": pl.Float64(),
    "tbt_p50_s": pl.Float64(),
    "tbt_p90_s": pl.Float64(),
    "tbt_p99_s": pl.Float64(),
    "queue_depth": pl.Float64(),
    "running_requests": pl.Float64(),
    "kv_usage_ratio": pl.Float64(),
}

INSTANCE_SAMPLES_SCHEMA: dict[str, pl.DataType] = {
    **INSTANCE_KEY_COLUMNS,
    **INSTANCE_METRIC_COLUMNS,
}

SERVICE_LOAD_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "interval_s": pl.Float64(),
    "service": pl.String(),
    "request_rate_rps": pl.Float64(),
    "input_tps": pl.Float64(),
    "output_tps": pl.Float64(),
}

#: Latency quantiles: null in an interval with no sample (no first token, no generated token).
LATENCY_COLUMNS = frozenset(
    {"ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tbt_p50_s", "tbt_p90_s", "tbt_p99_s"}
)

#: Columns that may be null. Every measurement: null means "not measured" (a latency interval
#: without samples, or a signal the source does not export, e.g. DCGM's SM activity, which is
#: off by default). A zero would claim a measurement nobody made.
NULLABLE_COLUMNS = frozenset(INSTANCE_METRIC_COLUMNS) | frozenset(
    c for c in SERVICE_LOAD_SCHEMA if c not in ("ts", "interval_s", "service")
)

#: Columns bounded to [0, 1].
RATIO_COLUMNS = frozenset({"gpu_util_ratio", "sm_active_ratio", "kv_usage_ratio"})


@dataclass(frozen=True)
class TableSpec:
    """A canonical table: its name, its typed columns and its partition key."""

    name: str
    schema: dict[str, pl.DataType]
    key: tuple[str, ...]
    partition_columns: tuple[str, ...] = ("service", "day")


CANONICAL_TABLES = {
    INSTANCE_SAMPLES: TableSpec(
        INSTANCE_SAMPLES, INSTANCE_SAMPLES_SCHEMA, key=("ts", "service", "instance_id")
    ),
    SERVICE_LOAD: TableSpec(SERVICE_LOAD, SERVICE_LOAD_SCHEMA, key=("ts", "service")),
}


def keys_unique(frame: pl.DataFrame, key: list) -> bool:
    """True when no two rows share ``key``, proven by distinct key hashes (sorted, so cheap);
    False when two hashes are equal, which the caller settles with an exact, slower check."""
    sorted_hashes = frame.lazy().select(pl.struct(key).hash().sort().alias("h"))
    return not sorted_hashes.select((pl.col("h") == pl.col("h").shift(1)).any()).collect().item()


class SchemaError(ValueError):
    """A frame does not conform to a canonical table; the message says which column and why."""


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Return ``frame`` with exactly the canonical columns of ``table``, in order and typed.

    Raises
    ------
    SchemaError
        If a column is missing, cannot be cast losslessly, a required value is null, a role is
        unknown, a measurement is negative, NaN or infinite, a ratio lies outside [0, 1], or
        two rows share a key (one instance, one interval).
    """
    spec = CANONICAL_TABLES[table]
    missing = [c for c in spec.schema if c not in frame.columns]
    if missing:
        raise SchemaError(f"{table}: missing columns {missing}")
    try:
        out = frame.select([pl.col(c).cast(dtype, strict=True) for c, dtype in spec.schema.items()])
    except pl.exceptions.InvalidOperationError as exc:
        raise SchemaError(f"{table}: a column has the wrong type: {exc}") from exc
    required = [c for c in spec.schema if c not in NULLABLE_COLUMNS]
    measurements = [c for c, dtype in spec.schema.items() if dtype == pl.Float64()]
    ratios = [c for c in spec.schema if c in RATIO_COLUMNS]
    # Every check is counted in one pass; messages are built only for a check that fails.
    counts = (
        out.lazy()
        .select(
            *(pl.col(c).null_count().alias(f"null {c}") for c in required),
            *(
                (~pl.col(c).is_finite() | (pl.col(c) < 0)).sum().alias(f"bad {c}")
                for c in measurements
            ),
            *((pl.col(c) > 1).sum().alias(f"ratio {c}") for c in ratios),
            (pl.col("interval_s") == 0).sum().alias("zero interval"),
            *(
                [(~pl.col("role").is_in(ROLES)).sum().alias("role")]
                if "role" in out.columns
                else []
            ),
        )
        .collect()
        .row(0, named=True)
    )
    nulls = {c: counts[f"null {c}"] for c in required if counts[f"null {c}"]}
    if nulls:
        raise SchemaError(f"{table}: null values in required columns {nulls}")
    if counts.get("role"):
        bad = out.filter(~pl.col("role").is_in(ROLES))["role"].unique().to_list()
        raise SchemaError(f"{table}: unknown roles {bad}; expected one of {ROLES}")
    for c in measurements:
        if counts[f"bad {c}"]:
            invalid = counts[f"bad {c}"]
            raise SchemaError(f"{table}: {invalid} values of {c} are negative, NaN or infinite")
    if counts["zero interval"]:
        raise SchemaError(f"{table}: interval_s must be > 0")
    for c in ratios:
        if counts[f"ratio {c}"]:
            raise SchemaError(f"{table}: {counts[f'ratio {c}']} values of {c} outside [0, 1]")
    if keys_unique(out, spec.key):
        return out
    duplicates = out.filter(pl.struct(spec.key).is_duplicated())
    if duplicates.height:
        first = duplicates.row(0, named=True)
        raise SchemaError(
            f"{table}: {duplicates.height} rows share a key {spec.key}, first "
            + ", ".join(f"{c}={first[c]}" for c in spec.key)
        )
    return out
