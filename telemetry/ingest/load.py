"""One load: read every source, derive canonical rows, account for each input row, write.

The order is what makes a load all or nothing: every source is read and every row checked
before the first write, so bad input stops the load with nothing written, and each
``TelemetryStore.write`` replaces whole service x day partitions in one transaction. The
accounting ``rows_read == rows_loaded + rows_skipped + rows_quarantined`` is checked here and
recorded in ``ingest_log`` for the pipeline's asset check. A service with instance telemetry
and no offered load gets one derived from its served work (:func:`assemble.derived_load`),
which never replaces an offered load measured by an earlier load (``service_load_origin``
says which partitions are derived).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from telemetry.ingest import quarantine, skipped
from telemetry.ingest.assemble import (
    FINISHED_SCHEMA,
    Canonical,
    derived_load,
    finish_instances,
    finish_load,
    from_signals,
)
from telemetry.ingest.errors import IngestError
from telemetry.ingest.exposition import RawSamples, parse_file, scrape_time_from_name
from telemetry.ingest.files import TableRead, is_table, parquet_days, read_table
from telemetry.ingest.mapping import Mapping
from telemetry.ingest.prometheus import Client, is_prometheus, read_prometheus
from telemetry.ingest.semantics import Signals, derive
from telemetry.schema import CANONICAL_TABLES, INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TableWrite, TelemetryStore

INGEST_LOG = "ingest_log"
#: Per service x day partition of ``service_load``: ``measured`` or ``derived`` (from served
#: work), so a derived load never overwrites a measured one and readers can flag it.
SERVICE_LOAD_ORIGIN = "service_load_origin"
EXPOSITION_SUFFIXES = (".prom", ".om", ".openmetrics", ".txt", ".metrics")
DEFAULT_INTERVAL_S = 15.0


@dataclass
class LoadReport:
    """What a load read, loaded, skipped, quarantined and wrote; ``as_json`` is the CLI's
    output. ``skipped`` counts skipped rows by reason, ``skipped_metrics`` by metric name."""

    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    partitions: list[dict]
    notes: dict = field(default_factory=dict)
    rows_skipped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_metrics: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_skipped": self.rows_skipped,
            "rows_quarantined": self.rows_quarantined,
            "skipped": self.skipped,
            "skipped_metrics": self.skipped_metrics,
            "quarantine_reasons": self.quarantine_reasons,
            "partitions": self.partitions,
            "notes": self.notes,
        }

    @classmethod
    def combine(cls, reports: list[LoadReport]) -> LoadReport:
        """One report for several loads (e.g. the days of :func:`ingest_by_day`): counts and
        reasons summed, partitions listed in load order, notes merged."""

        def summed(counts: list[dict[str, int]]) -> dict[str, int]:
            total: dict[str, int] = {}
            for count in counts:
                for key, rows in count.items():
                    total[key] = total.get(key, 0) + rows
            return total

        notes: dict = {}
        for report in reports:
            notes |= report.notes
        return cls(
            rows_read=sum(r.rows_read for r in reports),
            rows_loaded=sum(r.rows_loaded for r in reports),
            rows_quarantined=sum(r.rows_quarantined for r in reports),
            quarantine_reasons=summed([r.quarantine_reasons for r in reports]),
            partitions=[part for r in reports for part in r.partitions],
            notes=notes,
            rows_skipped=sum(r.rows_skipped for r in reports),
            skipped=summed([r.skipped for r in reports]),
            skipped_metrics=summed([r.skipped_metrics for r in reports]),
        )


@dataclass
class Prepared:
    """A load's canonical frames and accounting, before anything is written."""

    sources: list[str]
    canonical: Canonical
    rows_read: int
    #: Every quarantine ``source`` this load answers for (its files, URLs and their joint
    #: label): a reload replaces their quarantine rows, or deletes them when it has none.
    owned: list[str] = field(default_factory=list)
    #: ``service_load`` derived from served work for services the load gives none for.
    derived_load: pl.DataFrame = field(default_factory=lambda: _none(SERVICE_LOAD))

    @property
    def rows_quarantined(self) -> int:
        return int(self.canonical.quarantine["rows"].sum())

    @property
    def rows_skipped(self) -> int:
        return int(self.canonical.skipped["rows"].sum())


def _expand(source: str) -> list[Path]:
    path = Path(source)
    if not path.exists():
        raise IngestError(source, "no such file or directory", "Check the path")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    unsupported = [
        p.name for p in files if not (is_table(p) or p.name.endswith(EXPOSITION_SUFFIXES))
    ]
    if unsupported:
        raise IngestError(
            source,
            f"files of no supported type: {unsupported[:5]}",
            f"Supported: {', '.join((*EXPOSITION_SUFFIXES, '.csv', '.csv.gz', '.parquet'))}",
        )
    if not files:
        raise IngestError(source, "the directory holds no files", "Point at the export")
    return files


def prepare(
    sources: list[str],
    *,
    mapping: Mapping | None = None,
    service: str | None = None,
    interval_s: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    timeout_s: float = 30.0,
    now: datetime | None = None,
    day: date | None = None,
) -> Prepared:
    """Read and check every source; nothing is written.

    Parameters
    ----------
    sources : list of str
        Files, directories (every supported file inside) or ``prometheus+http(s)://`` URLs.
    mapping : Mapping, optional
        The mapping file's content.
    service : str, optional
        Service of every row, over labels, columns and the mapping.
    interval_s : float, optional
        Canonical interval (default: the mapping's, else 15 s).
    start, end : datetime, optional
        Time range for Prometheus sources (default: the last hour).
    timeout_s : float
        Per-request timeout of Prometheus queries.
    now : datetime, optional
        The loader's clock (tests fix it); future timestamps are quarantined against it.
    day : date, optional
        Read only this UTC day of each source, which must be a Parquet table with zoned
        timestamps (:func:`ingest_by_day` uses it); rows without a time go with the first day.

    Raises
    ------
    IngestError
        For a source that cannot be loaded at all; nothing is written.
    """
    mapping = mapping or Mapping()
    interval_s = float(interval_s or mapping.interval_s or DEFAULT_INTERVAL_S)
    now = now or datetime.now(UTC)
    end = end or now
    start = start or end - timedelta(hours=1)
    exposition: list[RawSamples] = []
    tables: list[TableRead] = []
    signals: list[Signals] = []
    rows_read = 0
    names = [Client(s).safe_url if is_prometheus(s) else s for s in sources]
    if day is not None:
        names = [f"{name} @ {day.isoformat()}" for name in names]
    owned = list(names)
    for source in sources:
        if is_prometheus(source):
            values, points = read_prometheus(
                source,
                start=start,
                end=end,
                interval_s=interval_s,
                mapping=mapping,
                service=service,
                timeout_s=timeout_s,
            )
            signals.append(values)
            rows_read += points
            continue
        for path in _expand(source):
            if day is not None:
                days = parquet_days(path, mapping)
                if days is None:
                    raise IngestError(
                        str(path),
                        "cannot be read one day at a time",
                        "Only Parquet tables with zoned timestamps can; load it whole",
                    )
                if day not in days:
                    raise IngestError(str(path), f"holds no rows of {day}", "Pick one of its days")
            if is_table(path):
                read = read_table(
                    path,
                    mapping,
                    service=service,
                    interval_s=interval_s,
                    day=day,
                    null_times=day is None or day == days[0],
                )
                owned.append(read.source)
                tables.append(read)
                rows_read += read.rows_read
            else:
                owned.append(str(path))
                raw = parse_file(path, scrape=scrape_time_from_name(path), now=now)
                exposition.append(raw)
                rows_read += raw.rows_read
    if exposition:
        raw = RawSamples.concat(exposition)
        signals.append(
            derive(
                raw,
                interval_s=interval_s,
                service=service or mapping.service,
                source=", ".join(names),
            )
        )
        signals[-1].quarantine = pl.concat([raw.quarantine, signals[-1].quarantine])
    signals.extend(t.signals for t in tables if t.signals is not None)
    label = ", ".join(names)
    owned.append(label)
    parts: list[Canonical] = []
    if signals:
        merged = Signals(
            values=pl.concat([s.values for s in signals], how="vertical_relaxed"),
            attributes=pl.concat([s.attributes for s in signals], how="vertical_relaxed"),
            quarantine=pl.concat([s.quarantine for s in signals]),
            notes={k: v for s in signals for k, v in s.notes.items()},
            skipped=pl.concat([s.skipped for s in signals]),
        )
        parts.append(from_signals(merged, interval_s=interval_s, mapping=mapping, source=label))
    for table in tables:
        if table.wide is None:
            continue
        finish = finish_instances if table.table == INSTANCE_SAMPLES else finish_load
        frame, bad, notes, edges = finish(
            table.wide,
            interval_s=interval_s,
            mapping=mapping,
            source=table.source,
            null_reason="missing_value",
        )
        parts.append(
            Canonical(
                instance_samples=frame
                if table.table == INSTANCE_SAMPLES
                else _none(INSTANCE_SAMPLES),
                service_load=frame if table.table == SERVICE_LOAD else _none(SERVICE_LOAD),
                quarantine=bad,
                rows_loaded=int(table.wide["rows"].sum())
                - int(bad["rows"].sum())
                - int(edges["rows"].sum()),
                notes=notes,
                skipped=edges,
            )
        )
    for table in tables:
        parts.append(
            Canonical(
                _none(INSTANCE_SAMPLES), _none(SERVICE_LOAD), table.quarantine, 0, table.notes
            )
        )
    canonical = Canonical(
        instance_samples=pl.concat([p.instance_samples for p in parts])
        if parts
        else _none(INSTANCE_SAMPLES),
        service_load=pl.concat([p.service_load for p in parts]) if parts else _none(SERVICE_LOAD),
        quarantine=pl.concat([quarantine.empty(), *(p.quarantine for p in parts)]),
        rows_loaded=sum(p.rows_loaded for p in parts),
        notes={k: v for p in parts for k, v in p.notes.items()},
        skipped=pl.concat([skipped.empty(), *(p.skipped for p in parts)]),
        finished_requests=pl.concat(
            [pl.DataFrame(schema=FINISHED_SCHEMA), *(p.finished_requests for p in parts)]
        ),
    )
    derived, load_notes = derived_load(
        canonical.instance_samples, canonical.service_load, canonical.finished_requests
    )
    if load_notes:
        canonical.notes["service_load"] = load_notes
    prepared = Prepared(
        sources=names,
        canonical=canonical,
        rows_read=rows_read,
        owned=sorted(set(owned)),
        derived_load=derived,
    )
    accounted = canonical.rows_loaded + prepared.rows_skipped + prepared.rows_quarantined
    if accounted != rows_read:
        raise AssertionError(
            f"row accounting broke: read {rows_read}, loaded {canonical.rows_loaded} + "
            f"skipped {prepared.rows_skipped} + quarantined {prepared.rows_quarantined} = "
            f"{accounted} (a bug: please report it)"
        )
    return prepared


def _none(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=CANONICAL_TABLES[table].schema)


def load_id(sources: list[str]) -> str:
    """A stable id for a set of sources: re-loading them replaces their log row."""
    return hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:16]


def _day() -> pl.Expr:
    return pl.col("ts").dt.date().alias("day")


def _offered_load(
    prepared: Prepared, store: TelemetryStore, load: str
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The ``service_load`` to write, its origin rows, and the partitions whose measured load
    the derived one leaves in place.

    A derived partition is written only where the store holds no measured offered load for
    that service and day: a load of instance telemetry alone must not erase the frontend's
    counters loaded before, while a re-load replaces what an earlier load derived.
    """
    measured = prepared.canonical.service_load
    derived = prepared.derived_load
    kept: list[str] = []
    if derived.height:
        stored = store.distinct(SERVICE_LOAD, ["service", "day"])
        origins = store.distinct(SERVICE_LOAD_ORIGIN, ["service", "day", "origin"])
        if stored is not None and stored.height:
            if origins is not None:
                stored = stored.join(origins, on=["service", "day"], how="left")
            else:
                stored = stored.with_columns(pl.lit(None, pl.String).alias("origin"))
            protected = stored.filter(pl.col("origin").fill_null("measured") != "derived")
            days = derived.with_columns(_day())
            kept = [
                f"{service} {day.isoformat()}"
                for service, day in days.join(protected, on=["service", "day"], how="semi")
                .select("service", "day")
                .unique()
                .sort("service", "day")
                .rows()
            ]
            derived = days.join(protected, on=["service", "day"], how="anti").drop("day")
    origin = pl.concat(
        [
            frame.select("service", _day(), pl.lit(name).alias("origin"))
            for name, frame in (("measured", measured), ("derived", derived))
        ]
    ).unique()
    origin = origin.with_columns(pl.lit(load).alias("load_id"))
    return pl.concat([measured, derived]), origin, kept


def write(prepared: Prepared, store: TelemetryStore) -> LoadReport:
    """Write a prepared load in one transaction: telemetry partitions, quarantine, ingest log.

    Raises
    ------
    IngestError
        If nothing could be loaded; the quarantine and the log are still written so the
        reasons can be inspected.
    """
    canonical = prepared.canonical
    this_load = load_id(prepared.sources)
    offered, origin, kept = _offered_load(prepared, store, this_load)
    notes = dict(canonical.notes)
    if kept:
        notes["service_load_kept"] = (
            f"the measured offered load already stored for {', '.join(kept)} is kept; no "
            "derived one replaces it"
        )
    writes, partitions = [], []
    for table, frame in (
        (INSTANCE_SAMPLES, canonical.instance_samples),
        (SERVICE_LOAD, offered),
    ):
        if frame.height:
            writes.append(TableWrite(table, frame))
            days = frame.lazy().group_by("service", _day()).agg(pl.len()).collect()
            partitions += [
                {"table": table, "service": s, "day": d.isoformat(), "rows": n}
                for s, d, n in days.sort("service", "day").rows()
            ]
    if origin.height:
        writes.append(TableWrite(SERVICE_LOAD_ORIGIN, origin, ("service", "day")))
    bad = canonical.quarantine
    # Always written: a clean reload deletes the quarantine rows of its earlier loads.
    stale = pl.DataFrame({"source": prepared.owned}, schema={"source": pl.String})
    writes.append(TableWrite(quarantine.QUARANTINE, bad, ("source",), also_clear=stale))
    report = LoadReport(
        rows_read=prepared.rows_read,
        rows_loaded=canonical.rows_loaded,
        rows_quarantined=prepared.rows_quarantined,
        quarantine_reasons=quarantine.summary(bad),
        partitions=partitions,
        notes=notes,
        rows_skipped=prepared.rows_skipped,
        skipped=skipped.by_reason(canonical.skipped),
        skipped_metrics=skipped.by_metric(canonical.skipped),
    )
    log = pl.DataFrame(
        {
            "load_id": [this_load],
            "sources": [", ".join(prepared.sources)],
            "loaded_at": [datetime.now(UTC)],
            "rows_read": [report.rows_read],
            "rows_loaded": [report.rows_loaded],
            "rows_skipped": [report.rows_skipped],
            "rows_quarantined": [report.rows_quarantined],
            "partitions": [len(partitions)],
            "notes": [json.dumps(notes, default=str)],
        }
    )
    store.write_many([*writes, TableWrite(INGEST_LOG, log, ("load_id",))])
    if not partitions:
        counts = {**report.skipped, **report.quarantine_reasons}
        reasons = ", ".join(f"{r} ({n})" for r, n in counts.items())
        raise IngestError(
            ", ".join(prepared.sources),
            f"nothing loaded: all {report.rows_read} rows were skipped or quarantined "
            f"({reasons or 'none'})",
            "Skipped rows are metrics heteroscale reads no signal from (the JSON report counts "
            "them by name); the quarantine table has the lines and reasons of the others",
        )
    return report


def ingest(sources: list[str], store: TelemetryStore, **options) -> LoadReport:
    """Read, check and write ``sources`` (options: :func:`prepare`); see :func:`write`."""
    return write(prepare(sources, **options), store)


def ingest_by_day(sources: list[str], store: TelemetryStore, **options) -> list[LoadReport]:
    """Load large tables one UTC day at a time: one read, check and transaction per day.

    Memory is bounded by one day of one file instead of the whole export. Each Parquet file
    with zoned timestamps is split by :func:`telemetry.ingest.files.parquet_days`; any other
    file loads whole. A failure stops at that day: the days before it are written (each is
    complete), that day and the later ones are not. Options: :func:`prepare`.
    """
    reports = []
    for source in sources:
        if is_prometheus(source):
            reports.append(ingest([source], store, **options))
            continue
        for path in _expand(source):
            days = parquet_days(path, options.get("mapping") or Mapping())
            for day in days or [None]:
                reports.append(ingest([str(path)], store, day=day, **options))
    return reports
