"""Parse Prometheus text (0.0.4) and OpenMetrics 1.0 exposition into raw samples.

Columnar, never a Python loop over lines: a line is cut at literal separators (``} `` after
the labels, then single spaces) with vectorised string search, and the ``name{labels}`` head,
which repeats at every timestamp of a series, is checked and split once per distinct head.
Lines the cut does not fit (exemplars, tabs, odd spacing, broken syntax) go through one
vectorised regular expression, the exact grammar; lines that still do not parse are
quarantined with their line number and text.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from telemetry.ingest import quarantine
from telemetry.ingest.errors import IngestError

#: name, {labels} (quoted values may hold braces), value, optional timestamp, optional exemplar.
SAMPLE_LINE = (
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"[ \t]+([^ \t]+)(?:[ \t]+([^ \t#]+))?[ \t]*(?:#.*)?$"
)
SAMPLE_HEAD = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
)
LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
ESCAPE = re.compile(r"\\[\\\"n]")
ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

#: Timestamps outside these years are not real telemetry: the unit (s vs ms) was misread.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Samples further ahead of the loader's clock than this come from a host with a skewed clock.
FUTURE_TOLERANCE = timedelta(minutes=5)

#: The raw samples every reader of exposition text produces.
RAW_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line": pl.Int64(),
    "metric": pl.String(),
    "labels": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
    "series": pl.UInt32(),
}

#: A byte that never occurs in exposition text: the CSV reader's separator, so a line is a row.
LINE_READER_SEPARATOR = b"\x1f"
LINE_READER_FROM_BYTES = 1 << 20

SCRAPE_TIME = re.compile(r"[-_@](\d{9,10}(?:\.\d+)?)$")


@dataclass
class RawSamples:
    """Samples of one or more exposition sources, before any semantics.

    Attributes
    ----------
    samples : pl.DataFrame
        One row per sample line, :data:`RAW_SCHEMA`.
    labels : pl.DataFrame
        One row per distinct label text: ``labels`` plus one column per label name.
    quarantine : pl.DataFrame
        Lines that could not be read, with the reason.
    types : dict
        ``# TYPE`` declarations by metric family.
    rows_read : int
        Sample lines read (comments and blank lines are not samples).
    """

    samples: pl.DataFrame
    labels: pl.DataFrame
    quarantine: pl.DataFrame = field(default_factory=quarantine.empty)
    types: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0

    @property
    def series(self) -> pl.DataFrame:
        """One row per series: ``series`` (the integer id in ``samples``), metric, labels."""
        return self.samples.select("series", "metric", "labels").unique("series")

    @staticmethod
    def concat(parts: list[RawSamples]) -> RawSamples:
        """Samples of several sources as one, label tables merged, series ids made common."""
        if len(parts) == 1:  # ids are already common; the renumbering would cost a join
            return parts[0]
        labels = pl.concat([p.labels for p in parts], how="diagonal_relaxed").unique("labels")
        types: dict[str, str] = {}
        for part in parts:
            types.update(part.types)
        part = [pl.lit(k, pl.UInt32).alias("_part") for k in range(len(parts))]
        every = pl.concat(p.series.with_columns(k) for p, k in zip(parts, part, strict=True))
        common = every.select("metric", "labels").unique(maintain_order=True)
        common = common.with_row_index("common").with_columns(pl.col("common").cast(pl.UInt32))
        ids = every.join(common, on=["metric", "labels"]).select("_part", "series", "common")
        samples = (
            pl.concat(p.samples.with_columns(k) for p, k in zip(parts, part, strict=True))
            .join(ids, on=["_part", "series"], how="left", maintain_order="left")
            .with_columns(pl.col("common").alias("series"))
            .drop("common", "_part")
        )
        return RawSamples(
            samples=samples,
            labels=labels,
            quarantine=pl.concat([p.quarantine for p in parts]),
            types=types,
            rows_read=sum(p.rows_read for p in parts),
        )


def scrape_time_from_name(path: Path) -> tuple[str, datetime] | None:
    """``(target, time)`` from a scrape file named ``<target>-<unix seconds>.prom``, else None."""
    match = SCRAPE_TIME.search(path.stem)
    if not match:
        return None
    seconds = float(match.group(1))
    return path.stem[: match.start()], datetime.fromtimestamp(seconds, tz=UTC)


def _parse_labels(text: str) -> dict[str, str] | None:
    """Label pairs of one label text, or None when it is not valid exposition syntax."""
    pairs: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = LABEL_PAIR.match(text, position)
        if not match or match.end() == position:
            return None
        value = match.group(2)
        if "\\" in value:
            value = ESCAPE.sub(lambda m: ESCAPES[m.group(0)], value)
        pairs[match.group(1)] = value
        position = match.end()
    return pairs


def parse(
    text: str,
    source: str,
    *,
    scrape: tuple[str, datetime] | None = None,
    now: datetime | None = None,
) -> RawSamples:
    """Parse one exposition document.

    Parameters
    ----------
    text : str
        The document. A final ``# EOF`` line marks OpenMetrics, whose timestamps are seconds;
        without it the text is Prometheus' format, whose timestamps are milliseconds.
    source : str
        The file name quarantine rows and errors refer to.
    scrape : (str, datetime), optional
        The target and time of a single scrape (from its file name): samples without a
        timestamp take this time, and series without a pod/instance label this ``instance``.
    now : datetime, optional
        The loader's clock, for the future-timestamp check (default: the current time).

    Returns
    -------
    RawSamples

    Raises
    ------
    IngestError
        If the document holds no sample, a sample has no timestamp and no scrape time is
        known, or timestamps are implausible (before 2000 or after 2100: seconds read as
        milliseconds or the reverse; a truncated OpenMetrics file loses its ``# EOF`` and with
        it the unit).
    """
    lines = text.split("\n")
    truncated_last = bool(text) and not text.endswith("\n") and lines[-1].strip() != "# EOF"
    openmetrics = any(line.strip() == "# EOF" for line in lines[-3:])
    return _parse_lines(
        pl.LazyFrame({"raw": lines}, schema={"raw": pl.String}),
        source,
        truncated_last=truncated_last,
        openmetrics=openmetrics,
        scrape=scrape,
        now=now,
    )


def parse_bytes(
    data: bytes,
    source: str,
    *,
    scrape: tuple[str, datetime] | None = None,
    now: datetime | None = None,
) -> RawSamples:
    """:func:`parse` of a file's bytes, which must be UTF-8.

    Large ASCII text without carriage returns (nearly every export) is split into lines by
    polars' CSV reader, with no Python string per line; anything else is decoded and split in
    Python
    (an empty line reads as null either way, and both keep every line's number).

    Raises
    ------
    IngestError
        If the bytes are not UTF-8 (the message gives the offset), or as :func:`parse`.
    """
    small = len(data) < LINE_READER_FROM_BYTES  # the reader's fixed cost outweighs its speed
    if small or not data.isascii() or b"\r" in data or LINE_READER_SEPARATOR in data:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(
                source, f"not UTF-8 text at byte {exc.start}", "Exposition text is UTF-8"
            ) from None
        return parse(text, source, scrape=scrape, now=now)
    lines = pl.scan_csv(
        io.BytesIO(data),
        has_header=False,
        separator=LINE_READER_SEPARATOR.decode(),
        quote_char=None,
        new_columns=["raw"],
        infer_schema=False,
    )
    tail = [part.decode().strip() for part in _last_lines(data, 3)]
    return _parse_lines(
        lines,
        source,
        truncated_last=not data.endswith(b"\n") and tail[-1] != "# EOF",
        openmetrics="# EOF" in tail,
        scrape=scrape,
        now=now,
    )


def _last_lines(data: bytes, count: int) -> list[bytes]:
    """``data.rsplit(b"\\n", count)[-count:]``, found from the end: rsplit reads it all."""
    parts: list[bytes] = []
    end = len(data)
    while len(parts) < count:
        start = data.rfind(b"\n", 0, end)
        parts.append(data[start + 1 : end])
        if start < 0:
            break
        end = start
    return parts[::-1]


def _parse_lines(
    lines: pl.LazyFrame,
    source: str,
    *,
    truncated_last: bool,
    openmetrics: bool,
    scrape: tuple[str, datetime] | None,
    now: datetime | None,
) -> RawSamples:
    """:func:`parse` of a document split into lines (``raw``; null: an empty line).

    The per-line cut is one lazy query, so polars fuses its string operations and runs them in
    its thread pool; only the distinct heads and label texts come back to Python.
    """
    now = now or datetime.now(UTC)
    frame = lines.with_row_index("line", offset=1)
    frame = frame.with_columns(pl.col("line").cast(pl.Int64), pl.col("raw").fill_null("")).filter(
        pl.col("raw").str.strip_chars() != ""
    )
    frame = frame.collect()
    is_comment = pl.col("raw").str.starts_with("#")
    comments = frame.filter(is_comment)
    sample_lines = _cut(frame.lazy().filter(~is_comment)).collect()
    types = {
        parts[2]: parts[3]
        for parts in (c.split() for c in comments["raw"].to_list())
        if len(parts) >= 4 and parts[1] == "TYPE"
    }
    if sample_lines.height == 0:
        raise IngestError(
            source,
            "no samples (the file is empty or holds only comments)",
            "Check that the export or scrape succeeded; remove the file if it is a stray.",
        )
    parsed = _split_lines(sample_lines)
    # One label text per series: looked up by id, the text is hashed once per series.
    series_labels = (
        parsed.lazy()
        .filter(pl.col("metric").is_not_null())
        .select("series", "labels")
        .unique("series", maintain_order=True)
        .collect()
    )
    label_texts = series_labels["labels"].unique(maintain_order=True).to_list()
    label_rows = []
    bad_labels = []
    for label_text in label_texts:
        pairs = _parse_labels(label_text)
        if pairs is None:
            bad_labels.append(label_text)
        else:
            label_rows.append({"labels": label_text, **pairs})
    malformed = (
        pl.col("metric").is_null()
        | pl.col("value").is_null()
        | (pl.col("ts_text").is_not_null() & pl.col("ts_number").is_null())
        | pl.col("series").is_in(
            series_labels.filter(pl.col("labels").is_in(bad_labels))["series"].implode()
        )
    )
    # Both formats end every line with a newline, so a last line without one was cut off,
    # even when what is left of it still parses.
    cut = (pl.col("line") == sample_lines["line"].max()) & pl.lit(truncated_last)
    parsed = parsed.with_columns(cut.alias("_cut"), (malformed & ~cut).alias("_malformed"))
    truncated = parsed.filter(pl.col("_cut"))
    bad = parsed.filter(pl.col("_malformed"))
    quarantined = [
        quarantine.rows(
            bad,
            source=source,
            location=pl.format("line {}", pl.col("line")),
            reason="malformed_line",
            detail="not `name{labels} value [timestamp]` with a numeric value",
            raw=pl.col("raw"),
        ),
        quarantine.rows(
            truncated,
            source=source,
            location=pl.format("line {}", pl.col("line")),
            reason="truncated",
            detail="the file ends without a newline in the middle of this line",
            raw=pl.col("raw"),
        ),
    ]
    good = (
        parsed.lazy()
        .filter(~pl.col("_cut") & ~pl.col("_malformed"))
        .select("line", "raw", "metric", "labels", "value", "ts_number", "series")
        .collect()
    )
    ts = _timestamps(good, source, openmetrics=openmetrics, scrape=scrape)
    good = good.with_columns(ts.alias("ts"))
    future = good.filter(pl.col("ts") > now + FUTURE_TOLERANCE)
    quarantined.append(
        quarantine.rows(
            future,
            source=source,
            location=pl.format("line {}", pl.col("line")),
            reason="future_timestamp",
            detail=pl.format("timestamp {} is ahead of the loader's clock", pl.col("ts")),
            raw=pl.col("raw"),
        )
    )
    good = good.filter(pl.col("ts") <= now + FUTURE_TOLERANCE)
    labels = (
        pl.DataFrame(label_rows, infer_schema_length=None)
        if label_rows
        else pl.DataFrame({"labels": [""]})
    )
    if scrape is not None:
        labels = _with_target(labels, scrape[0])
    samples = good.select(
        pl.lit(source).alias("source"), "line", "metric", "labels", "ts", "value", "series"
    )
    return RawSamples(
        samples=samples.cast(RAW_SCHEMA),
        labels=labels,
        quarantine=pl.concat(quarantined),
        types=types,
        rows_read=sample_lines.height,
    )


def _cut(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``head``, ``value_text``, ``ts_text``, ``value`` and ``ts_number`` of each line, cut at
    literal separators (``_end``, where the head ends, is null when a line has no space;
    ``_extra``, a field after the timestamp, is not null when the cut does not fit)."""
    raw = pl.col("raw")
    # The head ends at the first ``} ``, or at the first space without one; where that is the
    # wrong place, the head or an extra field fails the checks in :func:`_split_lines`.
    head_end = pl.coalesce(raw.str.find("} ", literal=True) + 1, raw.str.find(" ", literal=True))
    fields = pl.col("_rest").struct
    return (
        lines.with_columns(head_end.alias("_end"))
        .with_columns(
            raw.str.slice(0, pl.col("_end")).alias("head"),
            raw.str.slice(pl.col("_end") + 1).str.split_exact(" ", 2).alias("_rest"),
        )
        .with_columns(
            fields.field("field_0").alias("value_text"),
            fields.field("field_1").alias("ts_text"),
            fields.field("field_2").alias("_extra"),
        )
        .with_columns(
            pl.col("value_text").cast(pl.Float64, strict=False).alias("value"),
            pl.col("ts_text").cast(pl.Float64, strict=False).alias("ts_number"),
        )
    )


def _split_lines(cut: pl.DataFrame) -> pl.DataFrame:
    """``metric``, ``labels`` and ``series`` of each :func:`_cut` line (null ``metric`` when it
    is not a sample line).

    The common shape, ``name{labels} value [timestamp]`` with single spaces, is cut with
    literal searches; its head is validated once per distinct head. Other lines get the full
    regular expression, so both paths accept exactly :data:`SAMPLE_LINE`.
    """
    heads = cut["head"].drop_nulls().unique(maintain_order=True).to_list()
    matched = {h: m.groups() for h in heads if (m := SAMPLE_HEAD.fullmatch(h))}
    head_table = pl.DataFrame(
        {
            "head": list(matched),
            "metric": [m for m, _ in matched.values()],
            "labels": [labels or "" for _, labels in matched.values()],
        },
        schema={"head": pl.String, "metric": pl.String, "labels": pl.String},
    )
    series = head_table.select("metric", "labels").unique(maintain_order=True)
    series = series.with_row_index("series")
    head_table = head_table.join(series, on=["metric", "labels"])
    cut = cut.join(head_table, on="head", how="left")
    fits = (
        pl.col("metric").is_not_null()
        & pl.col("value").is_not_null()
        & (pl.col("ts_text").is_null() | pl.col("ts_number").is_not_null())
        & pl.col("_extra").is_null()
    )
    columns = ["line", "raw", "metric", "labels", "value_text", "ts_text", "value", "ts_number"]
    columns.append("series")
    fast = cut.filter(fits).select(columns)
    rest = cut.filter(~fits).select("line", "raw")
    if rest.height == 0:
        return fast
    slow = rest.with_columns(
        pl.col("raw")
        .str.extract_groups(SAMPLE_LINE)
        .struct.rename_fields(["metric", "labels", "value_text", "ts_text"])
        .alias("m")
    ).unnest("m")
    slow = slow.with_columns(
        pl.col("labels").fill_null(""),
        pl.col("value_text").cast(pl.Float64, strict=False).alias("value"),
        pl.col("ts_text").cast(pl.Float64, strict=False).alias("ts_number"),
    )
    unseen = (
        slow.filter(pl.col("metric").is_not_null())
        .select("metric", "labels")
        .unique(maintain_order=True)
        .join(series, on=["metric", "labels"], how="anti")
        .with_row_index("series", offset=series.height)
    )
    slow = slow.join(pl.concat([series, unseen]), on=["metric", "labels"], how="left")
    return pl.concat([fast, slow.select(columns)]).sort("line")


def _with_target(labels: pl.DataFrame, target: str) -> pl.DataFrame:
    """Give series without an ``instance`` label the scrape target, as Prometheus would."""
    if "instance" not in labels.columns:
        return labels.with_columns(pl.lit(target).alias("instance"))
    return labels.with_columns(pl.col("instance").fill_null(target))


def _timestamps(
    good: pl.DataFrame, source: str, *, openmetrics: bool, scrape: tuple[str, datetime] | None
) -> pl.Expr:
    """The sample timestamps as UTC datetimes, checked for a misread unit."""
    missing = good.filter(pl.col("ts_number").is_null())
    if missing.height and scrape is None:
        raise IngestError(
            source,
            f"line {missing['line'][0]} has no timestamp and the file name carries no scrape time",
            "Name single scrapes <target>-<unix seconds>.prom, or export with timestamps.",
        )
    seconds = pl.col("ts_number") if openmetrics else pl.col("ts_number") / 1000.0
    if scrape is not None:
        seconds = seconds.fill_null(scrape[1].timestamp())
    micros = (seconds * 1e6).round().cast(pl.Int64)
    earliest, latest = good.select(micros.min().alias("lo"), micros.max().alias("hi")).row(0)
    outside = None
    if earliest is not None and earliest < EARLIEST.timestamp() * 1e6:
        outside = earliest, "before 2000"
    elif latest is not None and latest > LATEST.timestamp() * 1e6:
        outside = latest, "after 2100"
    if outside is not None:
        line = good.filter(micros == outside[0])["line"][0]
        unit = (
            "seconds (OpenMetrics: the file ends with # EOF)"
            if openmetrics
            else ("milliseconds (Prometheus text: the file has no # EOF)")
        )
        raise IngestError(
            source,
            f"line {line}: timestamp read as {unit} falls {outside[1]}",
            "Timestamps are seconds in OpenMetrics and milliseconds in Prometheus text; "
            "an OpenMetrics file without its final # EOF line is probably truncated",
        )
    return micros.cast(pl.Datetime("us", "UTC"))
