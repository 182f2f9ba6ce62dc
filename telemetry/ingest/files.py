"""The generic file reader: CSV and Parquet in the canonical wide or long layout, or mapped.

Wide files hold canonical rows (``instance_samples`` or ``service_load`` columns); long files
hold one value per row, ``ts, instance_id, metric, value`` (plus optional ``service``,
``role``, ``gpu_type``, ``gpus_per_instance``). A mapping file rule renames a user's columns,
fixes the metric of a single-metric file, converts units and filters rows, so a foreign
export (e.g. Alibaba GenTD26, docs/ingest.md) loads without a conversion script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.parquet as pq

from telemetry.ingest import catalog as cat
from telemetry.ingest import quarantine, skipped
from telemetry.ingest.errors import IngestError
from telemetry.ingest.mapping import FileRule, Mapping
from telemetry.ingest.semantics import Signals
from telemetry.schema import (
    INSTANCE_KEY_COLUMNS,
    INSTANCE_METRIC_COLUMNS,
    LATENCY_COLUMNS,
    SERVICE_LOAD_SCHEMA,
    keys_unique,
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


def _ts_column(rule: FileRule | None) -> str:
    return (rule.columns.get("ts", "ts") if rule else "ts") or "ts"


def parquet_days(path: Path, mapping: Mapping) -> list[date] | None:
    """The UTC days a Parquet file holds, when its time column is a zoned timestamp (so a day
    can be read alone); None otherwise (CSV, text or epoch times: read the file whole)."""
    if not path.name.endswith(".parquet"):
        return None
    ts = _ts_column(mapping.file_rule(path))
    scan = pl.scan_parquet(path)
    dtype = scan.collect_schema().get(ts)
    if not (isinstance(dtype, pl.Datetime) and dtype.time_zone):
        return None
    utc_day = pl.col(ts).dt.convert_time_zone("UTC").dt.date()
    return scan.select(utc_day.drop_nulls().unique().sort()).collect()[ts].to_list()


def _read_day(path: Path, rule: FileRule | None, day: date, null_times: bool) -> pl.DataFrame:
    """The rows of one UTC day (and those without a time, when ``null_times``), numbered as in
    the whole file. Only the span of row groups whose statistics may hold them is read, so a
    file written in time order is read once over all its days."""
    name = _ts_column(rule)
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    metadata = pq.ParquetFile(path).metadata
    span, offset = [], 0
    for k in range(metadata.num_row_groups):
        group = metadata.row_group(k)
        chunks = (group.column(j) for j in range(group.num_columns))
        stats = next(c.statistics for c in chunks if c.path_in_schema == name)
        if (
            stats is None
            or not stats.has_min_max
            or (stats.min < end and stats.max >= start)
            or (null_times and (not stats.has_null_count or stats.null_count > 0))
        ):
            span += [offset, offset + group.num_rows]
        offset += group.num_rows
    if not span:
        return pl.DataFrame()
    first, last = min(span), max(span)
    ts = pl.col(name)
    wanted = (ts >= start) & (ts < end)
    if null_times:
        wanted = wanted | ts.is_null()
    frame = pl.scan_parquet(path).slice(first, last - first).collect()
    return frame.with_row_index("_row", offset=first + 1).filter(wanted)


def _read(path: Path, rule: FileRule | None, day: date | None, null_times: bool) -> pl.DataFrame:
    source = str(path)
    if path.stat().st_size == 0:
        raise IngestError(source, "the file is empty", "Check the export; remove stray files.")
    try:
        if day is not None:
            return _read_day(path, rule, day, null_times)
        if path.name.endswith(".parquet"):
            return pl.read_parquet(path)
        return _read_csv(path, rule)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise IngestError(
            source,
            f"cannot be read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {exc}",
            "The file may be truncated or in another format; re-export it",
        ) from exc


def _read_csv(path: Path, rule: FileRule | None) -> pl.DataFrame:
    """Canonical columns parsed as their types when every cell fits (the fast, common case);
    otherwise every cell as text, so a bad cell is quarantined instead of failing the file."""
    header = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    canonical = {yours: ours for ours, yours in (rule.columns if rule else {}).items()}
    types = {
        column: CANONICAL_TYPES[name]
        for column in header
        if (name := canonical.get(column, column)) in CANONICAL_TYPES and name != "ts"
    }
    try:
        return pl.read_csv(
            path,
            schema_overrides={c: types.get(c, pl.String) for c in header},
            truncate_ragged_lines=False,
        )
    except pl.exceptions.ComputeError:
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)


def _parse_times(text: pl.Series) -> pl.Series:
    """Text times to datetimes, each distinct text parsed once (exports repeat each time once
    per instance). The format is inferred from the first value, as ``str.to_datetime`` does."""
    distinct = text.unique(maintain_order=True)
    try:
        parsed = distinct.str.to_datetime(time_unit="us", strict=False)
    except pl.exceptions.ComputeError:  # no format fits: every cell is quarantined
        return pl.Series("ts", [None] * text.len(), pl.Datetime("us", "UTC"))
    return text.replace_strict(distinct, parsed, return_dtype=parsed.dtype).alias("ts")


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
            frame = frame.with_columns(_parse_times(frame["ts"]))
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
    # Numbers always become floats; only text (and float -> int) casts can fail.
    fallible = {
        c: t
        for c, t in casts.items()
        if frame.schema[c] != t and not (t == pl.Float64 and frame.schema[c].is_numeric())
    }
    typed = frame.with_columns(
        (
            pl.col(c).cast(pl.String).str.to_lowercase().is_in(["true", "1"])
            if t == pl.Boolean and frame.schema[c] == pl.String
            else pl.col(c).cast(t, strict=False)
        ).alias(f"_typed_{c}")
        for c, t in fallible.items()
    )
    failed = {c: pl.col(c).is_not_null() & pl.col(f"_typed_{c}").is_null() for c in fallible}
    wrong = pl.any_horizontal(*failed.values()) if failed else pl.lit(False)
    typed = typed.with_columns(wrong.alias("_wrong"))
    bad = typed.filter(pl.col("_wrong"))
    quarantined = quarantine.rows(
        bad,
        source=source,
        location=location(bad),
        reason="wrong_type",
        detail=pl.format(
            "not a number or time: {}",
            pl.concat_str(
                [
                    pl.when(mask).then(pl.format(f"{c} = {{}}", pl.col(c).cast(pl.String)))
                    for c, mask in failed.items()
                ],
                separator=", ",
                ignore_nulls=True,
            ),
        )
        if failed
        else "",
    )
    good = (
        typed.filter(~pl.col("_wrong"))
        .drop([*fallible, "_wrong"])
        .rename({f"_typed_{c}": c for c in fallible})
        .with_columns(pl.col(c).cast(t) for c, t in casts.items() if c not in fallible)
    )
    return good, quarantined


def location(frame: pl.DataFrame) -> pl.Expr:
    """Where a table row came from: ``line N`` of a CSV file, ``row N`` of a Parquet file.

    Rows carry only the number (``_line`` or ``_row``); the text is made for quarantined rows.
    """
    column = "_line" if "_line" in frame.columns else "_row"
    return pl.format(f"{column[1:]} {{}}", column)


def read_table(
    path: Path,
    mapping: Mapping,
    *,
    service: str | None,
    interval_s: float,
    day: date | None = None,
    null_times: bool = True,
) -> TableRead:
    """Read one CSV or Parquet file (see the module docstring).

    With ``day`` (a day of :func:`parquet_days`), only that UTC day's rows are read, plus the
    rows without a time when ``null_times``; the source is then named ``<path> @ <day>``.

    Raises
    ------
    IngestError
        If the file is empty or unreadable, a needed column is missing (schema drift: the
        message lists what is there and suggests a mapping), or times have no zone.
    """
    source = str(path)
    rule = mapping.file_rule(path)
    frame = _read(path, rule, day, null_times)
    if frame.height == 0 and day is None:
        raise IngestError(source, "the file has a header but no rows", "Check the export.")
    if day is not None:
        source = f"{path} @ {day.isoformat()}"
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
    parquet = path.name.endswith(".parquet")
    if "_row" not in frame.columns:
        frame = frame.with_row_index("_row" if parquet else "_line", offset=1 if parquet else 2)
    if rule and rule.where:
        before = frame.height
        for column, value in rule.where.items():
            frame = frame.filter(pl.col(column).cast(pl.String) == str(value))
        notes[f"{path.name}: rows outside `where`"] = before - frame.height
    if "ts" not in frame.columns:
        raise _drift(source, ["ts"], frame)
    frame = _timestamps(frame, source, rule, mapping, notes)
    rows_read = frame.height
    unparsed = quarantine.rows(
        frame.filter(pl.col("ts").is_null()),
        source=source,
        location=location(frame),
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
    present = [c for c in frame.columns if c not in ("_line", "_row")]
    return IngestError(
        source,
        f"missing columns {missing}; the file has {present}",
        "Rename them, or map them with `files: [{glob, columns: {canonical: yours}}]` in a "
        "mapping file (--mapping)",
    )


def _split_duplicates(frame: pl.DataFrame, key: list) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The first row of each key, and the later ones (the exact check runs only when the cheap
    hash check finds a possible duplicate)."""
    if keys_unique(frame, key):
        return frame, frame.clear()
    first = pl.struct(key).is_first_distinct()
    return frame.filter(first), frame.filter(~first)


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
    known = {*CANONICAL_TYPES, "_line", "_row", "source", "metric", "value"}
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
    key = [c for c in ("ts", "service", "instance_id") if c in typed.columns]
    typed, dupes = _split_duplicates(typed, key)
    bad = pl.concat(
        [
            bad,
            quarantine.rows(
                dupes,
                source=source,
                location=location(dupes),
                reason="duplicate_sample",
                detail="a second row for the same instance and time",
            ),
        ]
    )
    return TableRead(
        source=source,
        rows_read=0,
        wide=typed.with_columns(pl.lit(1, pl.Int64).alias("rows")),
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
    known = pl.col("metric").is_in([*CANONICAL_TYPES])
    aside = skipped.rows(
        frame.filter(~known), source=source, reason="unused_metric", metric=pl.col("metric")
    )
    typed, wrong = _typed(frame.filter(known), ["value"], source)
    bad = [wrong]
    for column, unit in (rule.units if rule else {}).items():
        typed = typed.with_columns(
            pl.when(pl.col("metric") == column)
            .then(pl.col("value") * cat.UNIT_SCALE[unit])
            .otherwise(pl.col("value"))
        )
        notes.setdefault("units", {})[column] = f"{unit} x {cat.UNIT_SCALE[unit]:g}"
    instance_id = pl.col("instance_id").fill_null("")
    typed, dupes = _split_duplicates(typed, ["service", instance_id, "metric", "ts"])
    bad.append(
        quarantine.rows(
            dupes,
            source=source,
            location=location(dupes),
            reason="duplicate_sample",
            detail="a second value for the same instance, metric and time",
        )
    )
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
        values=values,
        attributes=attributes,
        quarantine=pl.concat([quarantine.empty(), *bad]),
        skipped=aside,
    )
    return TableRead(source=source, rows_read=0, signals=signals, notes=notes)
