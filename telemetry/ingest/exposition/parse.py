"""Parse Prometheus text (0.0.4) and OpenMetrics 1.0 exposition into raw samples.

Columnar, never a Python loop over lines (:mod:`lines` cuts them): a file is memory-mapped and
split into lines by polars' CSV reader, the cut is one lazy query in polars' thread pool, and
from then on a sample is integers and floats; only distinct heads, label texts and the lines
that do not parse come back to Python. Lines that do not parse are quarantined with their
line number and text.
"""

from __future__ import annotations

import io
import mmap
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from telemetry.ingest import quarantine
from telemetry.ingest.errors import IngestError
from telemetry.ingest.exposition import lines as grammar
from telemetry.ingest.exposition.raw import RAW_SCHEMA, RawSamples

#: Timestamps outside these years are not real telemetry: the unit (s vs ms) was misread.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Samples further ahead of the loader's clock than this come from a host with a skewed clock.
FUTURE_TOLERANCE = timedelta(minutes=5)

#: A byte that never occurs in exposition text: the CSV reader's separator, so a line is a row.
LINE_READER_SEPARATOR = b"\x1f"
LINE_READER_FROM_BYTES = 1 << 20

SCRAPE_TIME = re.compile(r"[-_@](\d{9,10}(?:\.\d+)?)$")


def scrape_time_from_name(path: Path) -> tuple[str, datetime] | None:
    """``(target, time)`` from a scrape file named ``<target>-<unix seconds>.prom``, else None."""
    match = SCRAPE_TIME.search(path.stem)
    if not match:
        return None
    seconds = float(match.group(1))
    return path.stem[: match.start()], datetime.fromtimestamp(seconds, tz=UTC)


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


def parse_file(
    path: Path,
    *,
    scrape: tuple[str, datetime] | None = None,
    now: datetime | None = None,
) -> RawSamples:
    """:func:`parse` of a file, which must be UTF-8 text; quarantine rows name it ``str(path)``.

    The file is memory-mapped, not read: the checks that pick the line splitter scan the
    mapping, and polars' CSV reader maps the file itself, so a large export is never copied
    into Python (it is over a tenth of the time a read and decode would add).

    Raises
    ------
    IngestError
        As :func:`parse_bytes`.
    """
    with open(path, "rb") as file:
        if file.seek(0, io.SEEK_END) < LINE_READER_FROM_BYTES:
            file.seek(0)
            return parse_bytes(file.read(), str(path), scrape=scrape, now=now)
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if not _csv_readable(data):
                return parse_bytes(data[:], str(path), scrape=scrape, now=now)
            return _parse_csv_lines(data, path, str(path), scrape=scrape, now=now)


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
    Python (an empty line reads as null either way, and both keep every line's number).

    Raises
    ------
    IngestError
        If the bytes are not UTF-8 (the message gives the offset), or as :func:`parse`.
    """
    small = len(data) < LINE_READER_FROM_BYTES  # the reader's fixed cost outweighs its speed
    if small or not _csv_readable(data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(
                source, f"not UTF-8 text at byte {exc.start}", "Exposition text is UTF-8"
            ) from None
        return parse(text, source, scrape=scrape, now=now)
    return _parse_csv_lines(data, io.BytesIO(data), source, scrape=scrape, now=now)


def _csv_readable(data: bytes | mmap.mmap) -> bool:
    """Whether polars' CSV reader splits ``data`` into the lines :func:`parse` would: ASCII
    (its string offsets are then byte offsets, and it is UTF-8), no carriage return, no
    separator byte."""
    ascii_ = int(np.frombuffer(data, dtype=np.uint8).max(initial=0)) < 0x80
    return ascii_ and data.find(b"\r") < 0 and data.find(LINE_READER_SEPARATOR) < 0


def _parse_csv_lines(
    data: bytes | mmap.mmap,
    readable: Path | io.BytesIO,
    source: str,
    *,
    scrape: tuple[str, datetime] | None,
    now: datetime | None,
) -> RawSamples:
    """:func:`parse` of ``data`` (also readable as ``readable``), split by the CSV reader."""
    lines = pl.scan_csv(
        readable,
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
        truncated_last=data[-1:] != b"\n" and tail[-1] != "# EOF",
        openmetrics="# EOF" in tail,
        scrape=scrape,
        now=now,
    )


def _last_lines(data: bytes | mmap.mmap, count: int) -> list[bytes]:
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

    The cut is one lazy query; the lines it fits become samples through a join of their head
    with the (small) head table, the rest are read by the grammar. Only those, and the lines
    quarantined, keep their text.
    """
    now = now or datetime.now(UTC)
    frame = grammar.cut(lines.with_row_index("line", offset=1)).collect()
    ids, series = _series_ids(frame["head"])
    frame = frame.with_columns(ids)
    fits = pl.col("series").is_not_null() & pl.col("_shape")
    fast = frame.lazy().filter(fits).select("line", "series", "value", "ts_number").collect()
    # Comments and blank lines never fit (no head starts with "#"): they are among the rest.
    rest = frame.lazy().filter(~fits).select("line", "raw").collect()
    comment = pl.col("raw").str.starts_with("#").fill_null(False)
    types = {
        parts[2]: parts[3]
        for parts in (c.split() for c in rest.filter(comment)["raw"].to_list())
        if len(parts) >= 4 and parts[1] == "TYPE"
    }
    blank = pl.col("raw").fill_null("").str.strip_chars() == ""
    slow, series = grammar.by_grammar(rest.filter(~comment & ~blank), series)
    rows_read = fast.height + slow.height
    if rows_read == 0:
        raise IngestError(
            source,
            "no samples (the file is empty or holds only comments)",
            "Check that the export or scrape succeeded; remove the file if it is a stray.",
        )
    labels, bad_labels = _label_table(series)
    malformed = (
        pl.col("metric").is_null()
        | pl.col("value").is_null()
        | pl.col("_ts_bad")
        | pl.col("series").is_in(bad_labels.implode())
    )
    bad = slow.filter(malformed).select("line", "raw")
    good = slow.filter(~malformed).select(fast.columns)
    if bad_labels.len():
        of_bad_labels = pl.col("series").is_in(bad_labels.implode())
        bad_fast = _with_raw(fast.filter(of_bad_labels), frame).select(bad.columns)
        bad = pl.concat([bad_fast, bad]).sort("line")
        fast = fast.filter(~of_bad_labels)
    good = fast.merge_sorted(good, key="line") if good.height else fast
    truncated = bad.clear()
    if truncated_last:
        # Both formats end every line with a newline, so a last line without one was cut
        # off, even when what is left of it still parses.
        last = max(good["line"].max() or 0, bad["line"].max() or 0)
        truncated = frame.filter(pl.col("line") == last).select("line", "raw")
        bad = bad.filter(pl.col("line") != last)
        good = good.filter(pl.col("line") != last)
    good = good.with_columns(_timestamps(good, source, openmetrics=openmetrics, scrape=scrape))
    future = pl.col("ts") > now + FUTURE_TOLERANCE
    ahead = _with_raw(good.filter(future), frame)
    good = good.filter(~future)
    at_line = pl.format("line {}", pl.col("line"))
    quarantined = [
        quarantine.rows(
            bad,
            source=source,
            location=at_line,
            reason="malformed_line",
            detail="not `name{labels} value [timestamp]` with a numeric value",
            raw=pl.col("raw"),
        ),
        quarantine.rows(
            truncated,
            source=source,
            location=at_line,
            reason="truncated",
            detail="the file ends without a newline in the middle of this line",
            raw=pl.col("raw"),
        ),
        quarantine.rows(
            ahead,
            source=source,
            location=at_line,
            reason="future_timestamp",
            detail=pl.format("timestamp {} is ahead of the loader's clock", pl.col("ts")),
            raw=pl.col("raw"),
        ),
    ]
    series = series.filter(pl.col("series").is_in(good["series"].unique().implode()))
    if scrape is not None:
        series, labels = _with_target(series, labels, scrape[0])
    samples = good.select(pl.lit(0).alias("source"), "line", "series", "ts", "value")
    return RawSamples(
        samples=samples.cast(RAW_SCHEMA),
        series=series,
        labels=labels,
        sources=[source],
        quarantine=pl.concat(quarantined),
        types=types,
        rows_read=rows_read,
    )


def _series_ids(heads: pl.Series) -> tuple[pl.Series, pl.DataFrame]:
    """The series id of each line (null: no head of the grammar) and the series table.

    A backfill holds each series' samples together, so its heads come in runs: only the
    first head of each run is looked up (a run id costs one comparison with the line before,
    a lookup a hash of the head), then the ids are spread over the runs by position.
    """
    runs = heads.rle_id()
    starts = heads.filter((runs != runs.shift(1)).fill_null(True))
    table, series = grammar.head_table(starts.drop_nulls().unique(maintain_order=True).to_list())
    ids = starts.to_frame().join(table, on="head", how="left", maintain_order="left")["series"]
    return ids.gather(runs), series


def _label_table(series: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """One row per valid label text (``labels`` and a column per label name), and the ids of
    the series whose label text is not valid (their lines are malformed)."""
    rows = []
    invalid = []
    for text in series["labels"].unique(maintain_order=True).to_list():
        pairs = grammar.parse_labels(text)
        if pairs is None:
            invalid.append(text)
        else:
            rows.append({"labels": text, **pairs})
    table = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame({"labels": [""]})
    return table, series.filter(pl.col("labels").is_in(invalid))["series"]


def _with_raw(rows: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with the text of their line, for quarantine (few rows: a join by line)."""
    if rows.height == 0:
        return rows.with_columns(pl.lit(None, pl.String).alias("raw"))
    return rows.join(frame.select("line", "raw"), on="line", how="left", maintain_order="left")


def _with_target(
    series: pl.DataFrame, labels: pl.DataFrame, target: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give series without an ``instance`` label the scrape target, as Prometheus does: in
    their label text too, so that two targets' scrapes of the same series (every vLLM pod
    exports ``{engine="0",model_name=...}``) stay two series."""
    if "instance" not in labels.columns:
        labels = labels.with_columns(pl.lit(None, pl.String).alias("instance"))
    escaped = target.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    pair = f'instance="{escaped}"'
    text = pl.col("labels")
    named = labels.with_columns(
        pl.when(pl.col("instance").is_not_null())
        .then(text)
        .when(text == "")
        .then(pl.lit(pair))
        .otherwise(text + pl.lit("," + pair))
        .alias("_text"),
        pl.col("instance").fill_null(target),
    )
    renamed = series.join(
        named.select("labels", "_text"), on="labels", how="left", maintain_order="left"
    ).with_columns(pl.coalesce("_text", "labels").alias("labels"))
    return renamed.drop("_text"), named.drop("labels").rename({"_text": "labels"})


def _timestamps(
    good: pl.DataFrame, source: str, *, openmetrics: bool, scrape: tuple[str, datetime] | None
) -> pl.Series:
    """The sample timestamps (``ts``) as UTC datetimes, checked for a misread unit."""
    if good["ts_number"].null_count() and scrape is None:
        line = good.filter(pl.col("ts_number").is_null())["line"][0]
        raise IngestError(
            source,
            f"line {line} has no timestamp and the file name carries no scrape time",
            "Name single scrapes <target>-<unix seconds>.prom, or export with timestamps.",
        )
    seconds = pl.col("ts_number") if openmetrics else pl.col("ts_number") / 1000.0
    if scrape is not None:
        seconds = seconds.fill_null(scrape[1].timestamp())
    micros = good.select((seconds * 1e6).round().cast(pl.Int64)).to_series()
    earliest, latest = micros.min(), micros.max()
    outside = None
    if earliest is not None and earliest < EARLIEST.timestamp() * 1e6:
        outside = earliest, "before 2000"
    elif latest is not None and latest > LATEST.timestamp() * 1e6:
        outside = latest, "after 2100"
    if outside is not None:
        line = good["line"].filter(micros == outside[0])[0]
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
    return micros.cast(pl.Datetime("us", "UTC")).alias("ts")
