"""The generic file reader: CSV and Parquet in the canonical wide or long layout, or mapped.

Wide files hold canonical rows (``instance_samples`` or ``service_load`` columns); long files
hold one value per row, ``ts, instance_id, metric, value`` (plus optional ``service``,
``role``, ``gpu_type``, ``gpus_per_instance``). A mapping file rule renames a user's columns,
fixes the metric of a single-metric file, converts units and filters rows, so a foreign
export (e.g. Alibaba GenTD26, docs/ingest.md) loads without a conversion script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from telemetry.ingest import catalog as cat
from telemetry.ingest import quarantine
from telemetry.ingest.errors import IngestError
from telemetry.ingest.mapping import FileRule, Mapping
from telemetry.ingest.semantics import Signals
from telemetry.schema import (
    INSTANCE_KEY_COLUMNS,
    INSTANCE_METRIC_COLUMNS,
    LATENCY_COLUMNS,
    SERVICE_LOAD_SCHEMA,
)

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
CANONICAL_TYPES = {**INSTANCE_KEY_COLUMNS, **INSTANCE_METRIC_COLUMNS, **SERVICE_LOAD_SCHEMA}
#: Epoch numbers at or above this are milliseconds (1e11 s is the year 5138).
MILLISECONDS_FROM = 1e11


@dataclass
class TableRead:
    """What one file gave: wide rows ready to finish, or long signal values, and its quarantine."""

    source: str
    rows_read: int
    wide: pl.DataFrame | None = None
    table: str | None = None
    signals: Signals | None = None
    quarantine: pl.DataFrame = field(default_factory=quarantine.empty)
    notes: dict = field(default_factory=dict)


def is_table(path: Path) -> bool:
    return path.name.endswith(TABLE_SUFFIXES)


def _read(path: Path) -> pl.DataFrame:
    source = str(path)
    if path.stat().st_size == 0:
        raise IngestError(source, "the file is empty", "Check the export; remove stray files.")
    try:
        if path.name.endswith(".parquet"):
            return pl.read_parquet(path)
        # Every cell as text: a bad cell is then quarantined instead of failing the file.
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise IngestError(
            source,
            f"cannot be read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {exc}",
            "The file may be truncated or in another format; re-export it",
        ) from exc


def _timestamps(
    frame: pl.DataFrame, source: str, rule: FileRule | None, mapping: Mapping, notes: dict
) -> pl.DataFrame:
    """``ts`` as UTC, with cells that are not times left null for the type check."""
    dtype = frame.schema["ts"]
    if dtype == pl.String:
        numeric = pl.col("ts").cast(pl.Float64, strict=False)
        if frame.select(numeric.is_not_null().any()).item():
            frame = frame.with_columns(numeric.alias("ts"))
            dtype = pl.Float64
        else:
            # Eagerly, on the Series: only then does polars take the zone from the text.
            try:
                parsed = frame["ts"].str.to_datetime(time_unit="us", strict=False)
            except pl.exceptions.ComputeError:  # no format fits: every cell is quarantined
                parsed = pl.Series("ts", [None] * frame.height, pl.Datetime("us", "UTC"))
            frame = frame.with_columns(parsed.alias("ts"))
            dtype = frame.schema["ts"]
    if dtype.is_numeric():
        unit = rule.ts_unit if rule and rule.ts_unit else None
        if unit is None:
            largest = frame.select(pl.col("ts").abs().max()).item() or 0
            unit = "ms" if largest >= MILLISECONDS_FROM else "s"
            notes["ts_unit"] = f"epoch numbers read as {unit} (by magnitude); set ts_unit to fix"
        scale = {"s": 1e6, "ms": 1e3}[unit]
        return frame.with_columns(
            (pl.col("ts").cast(pl.Float64) * scale)
            .round()
            .cast(pl.Int64)
            .cast(pl.Datetime("us", "UTC"))
            .alias("ts")
        )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        if not mapping.timezone:
            raise IngestError(
                source,
                "column ts holds times without a time zone, so the instant is ambiguous",
                "Write times with an offset (2025-03-01T00:00:00Z) or set `timezone:` "
                "(e.g. UTC) in the mapping file",
            )
        ZoneInfo(mapping.timezone)
        notes["timezone"] = f"times without a zone read as {mapping.timezone}"
        return frame.with_columns(
            pl.col("ts")
            .dt.replace_time_zone(mapping.timezone, ambiguous="raise")
            .dt.convert_time_zone("UTC")
            .dt.cast_time_unit("us")
        )
    if isinstance(dtype, pl.Datetime):
        return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    raise IngestError(source, f"column ts has type {dtype}", "Store times as timestamps or text")


def _typed(frame: pl.DataFrame, columns, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast to canonical types; a row with a cell that does not cast is quarantined."""
    casts = {c: CANONICAL_TYPES.get(c, pl.Float64()) for c in columns}
    typed = frame.with_columns(
        (
            pl.col(c).cast(pl.String).str.to_lowercase().is_in(["true", "1"])
            if t == pl.Boolean and frame.schema[c] == pl.String
            else pl.col(c).cast(t, strict=False)
        ).alias(f"_typed_{c}")
        for c, t in casts.items()
    )
    failed = [
        pl.when(pl.col(c).is_not_null() & pl.col(f"_typed_{c}").is_null()).then(
            pl.format(f"{c} = {{}}", pl.col(c).cast(pl.String))
        )
        for c in casts
    ]
    typed = typed.with_columns(
        pl.concat_str(failed, separator=", ", ignore_nulls=True).alias("_wrong")
    )
    bad = typed.filter(pl.col("_wrong") != "")
    quarantined = quarantine.rows(
        bad,
        source=source,
        location=pl.col("location"),
        reason="wrong_type",
        detail=pl.format("not a number or time: {}", "_wrong"),
    )
    good = (
        typed.filter(pl.col("_wrong") == "")
        .drop([*casts, "_wrong"])
        .rename({f"_typed_{c}": c for c in casts})
    )
    return good, quarantined


def read_table(
    path: Path, mapping: Mapping, *, service: str | None, interval_s: float
) -> TableRead:
    """Read one CSV or Parquet file (see the module docstring).

    Raises
    ------
    IngestError
        If the file is empty or unreadable, a needed column is missing (schema drift: the
        message lists what is there and suggests a mapping), or times have no zone.
    """
    source = str(path)
    rule = mapping.file_rule(path)
    frame = _read(path)
    if frame.height == 0:
        raise IngestError(source, "the file has a header but no rows", "Check the export.")
    notes: dict = {}
    if rule and rule.columns:
        absent = sorted(set(rule.columns.values()) - set(frame.columns))
        if absent:
            raise IngestError(
                source,
                f"mapped columns {absent} are not in the file (it has {frame.columns})",
                "Fix `columns:` in the mapping",
            )
        frame = frame.rename({v: k for k, v in rule.columns.items()})
    if rule and rule.where:
        before = frame.height
        for column, value in rule.where.items():
            frame = frame.filter(pl.col(column).cast(pl.String) == str(value))
        notes[f"{path.name}: rows outside `where`"] = before - frame.height
    frame = frame.with_row_index("_row", offset=2 if not path.name.endswith(".parquet") else 1)
    frame = frame.with_columns(
        pl.format("row {}" if path.name.endswith(".parquet") else "line {}", "_row").alias(
            "location"
        )
    ).drop("_row")
    if "ts" not in frame.columns:
        raise _drift(source, ["ts"], frame)
    frame = _timestamps(frame, source, rule, mapping, notes)
    rows_read = frame.height
    unparsed = quarantine.rows(
        frame.filter(pl.col("ts").is_null()),
        source=source,
        location=pl.col("location"),
        reason="wrong_type",
        detail="ts is not a time",
    )
    frame = frame.filter(pl.col("ts").is_not_null())
    frame = frame.with_columns(
        (
            pl.lit(service or mapping.service)
            if (service or mapping.service) or "service" not in frame.columns
            else pl.col("service")
        ).alias("service")
    )
    long = (rule and rule.layout == "long") or rule is None and "metric" in frame.columns
    read = (
        _long(frame, source, rule, notes, interval_s)
        if long
        else _wide(frame, source, mapping, rule, notes)
    )
    read.rows_read = rows_read
    read.quarantine = pl.concat([unparsed, read.quarantine])
    return read


def _drift(source: str, missing: list[str], frame: pl.DataFrame) -> IngestError:
    present = [c for c in frame.columns if c != "location"]
    return IngestError(
        source,
        f"missing columns {missing}; the file has {present}",
        "Rename them, or map them with `files: [{glob, columns: {canonical: yours}}]` in a "
        "mapping file (--mapping)",
    )


def _scaled(frame: pl.DataFrame, rule: FileRule | None, notes: dict) -> pl.DataFrame:
    for column, unit in (rule.units if rule else {}).items():
        if column in frame.columns and unit != "ratio":
            frame = frame.with_columns(pl.col(column) * cat.UNIT_SCALE[unit])
            notes.setdefault("units", {})[column] = f"{unit} x {cat.UNIT_SCALE[unit]:g}"
    return frame


def _wide(frame, source, mapping, rule, notes) -> TableRead:
    if "instance_id" in frame.columns:
        table = "instance_samples"
        wanted = [c for c in INSTANCE_METRIC_COLUMNS if c not in mapping.constants]
        required = ["instance_id", *(c for c in wanted if c not in LATENCY_COLUMNS)]
    else:
        table = "service_load"
        wanted = [c for c in SERVICE_LOAD_SCHEMA if c not in ("ts", "service", "interval_s")]
        required = [c for c in wanted if c not in mapping.constants]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise _drift(source, missing, frame)
    known = {*CANONICAL_TYPES, "location", "source", "metric", "value"}
    extra = [c for c in frame.columns if c not in known]
    if extra:
        notes[f"{Path(source).name}: columns not read"] = extra
    numeric = [
        c
        for c in frame.columns
        if c in CANONICAL_TYPES and c not in ("ts", "service", "role", "instance_id", "gpu_type")
    ]
    typed, bad = _typed(frame, numeric, source)
    typed = _scaled(typed, rule, notes)
    dupes = typed.filter(
        ~pl.struct(
            [c for c in ("ts", "service", "instance_id") if c in typed.columns]
        ).is_first_distinct()
    )
    bad = pl.concat(
        [
            bad,
            quarantine.rows(
                dupes,
                source=source,
                location=pl.col("location"),
                reason="duplicate_sample",
                detail="a second row for the same instance and time",
            ),
        ]
    )
    typed = typed.join(dupes.select("location"), on="location", how="anti")
    return TableRead(
        source=source,
        rows_read=0,
        wide=typed.with_columns(pl.lit(1, pl.Int64).alias("rows"), pl.lit(source).alias("source")),
        table=table,
        quarantine=bad,
        notes=notes,
    )


def _long(frame, source, rule, notes, interval_s) -> TableRead:
    if rule and rule.column:
        frame = frame.with_columns(pl.lit(rule.column).alias("metric"))
    missing = [c for c in ("ts", "metric", "value") if c not in frame.columns]
    if missing:
        raise _drift(source, missing, frame)
    if "instance_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("instance_id"))
    unknown = frame.filter(~pl.col("metric").is_in([*CANONICAL_TYPES]))
    bad = [
        quarantine.rows(
            unknown,
            source=source,
            location=pl.col("metric"),
            reason="unknown_metric",
            detail="not a canonical column",
        )
    ]
    frame = frame.filter(pl.col("metric").is_in([*CANONICAL_TYPES]))
    typed, wrong = _typed(frame, ["value"], source)
    bad.append(wrong)
    for column, unit in (rule.units if rule else {}).items():
        typed = typed.with_columns(
            pl.when(pl.col("metric") == column)
            .then(pl.col("value") * cat.UNIT_SCALE[unit])
            .otherwise(pl.col("value"))
        )
        notes.setdefault("units", {})[column] = f"{unit} x {cat.UNIT_SCALE[unit]:g}"
    instance_id = pl.col("instance_id").fill_null("")
    dupes = typed.filter(~pl.struct("service", instance_id, "metric", "ts").is_first_distinct())
    bad.append(
        quarantine.rows(
            dupes,
            source=source,
            location=pl.col("location"),
            reason="duplicate_sample",
            detail="a second value for the same instance, metric and time",
        )
    )
    typed = typed.join(dupes.select("location"), on="location", how="anti")
    binned = typed.with_columns(pl.col("ts").dt.truncate(f"{round(interval_s * 1e6)}us"))
    values = (
        binned.group_by("service", "instance_id", "ts", "metric")
        .agg(pl.col("value").mean(), pl.len().cast(pl.Int64).alias("rows"))
        .rename({"metric": "column"})
    )
    attributes = (
        binned.filter(pl.col("instance_id").is_not_null())
        .group_by("service", "instance_id")
        .agg(
            (
                pl.col("role").drop_nulls().unique().sort()
                if "role" in binned.columns
                else pl.lit([], pl.List(pl.String)).first()
            ).alias("roles"),
            (
                pl.col("gpu_type").drop_nulls().first()
                if "gpu_type" in binned.columns
                else pl.lit(None, pl.String)
            ).alias("gpu_type"),
            (
                pl.col("gpus_per_instance").cast(pl.Int64, strict=False).drop_nulls().first()
                if "gpus_per_instance" in binned.columns
                else pl.lit(None, pl.Int64)
            ).alias("gpus_per_instance"),
        )
    )
    signals = Signals(
        values=values, attributes=attributes, quarantine=pl.concat([quarantine.empty(), *bad])
    )
    return TableRead(source=source, rows_read=0, signals=signals, notes=notes)
