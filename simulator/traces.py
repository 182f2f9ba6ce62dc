"""Real request traces, loaded into one canonical request frame the simulator replays.

The canonical frame (:data:`REQUEST_SCHEMA`) has one row per request, sorted by arrival:

- ``arrival_s`` (Float64): seconds since the trace start;
- ``input_tokens`` / ``output_tokens`` (Int64): prompt and generated lengths;
- ``prefix_hashes`` (List(Int64)): hashes of the prompt's fixed-size KV blocks, equal hashes
  meaning a shareable prefix; empty when the format has none.

A :class:`Trace` pairs the frame with the wall-clock start (UTC) that telemetry timestamps use.
Bad input raises :class:`TraceError` naming the file, the line and the column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from simulator.paths import AZURE_CONV_CSV, MOONCAKE_CONV_SLICE_JSONL

REQUEST_SCHEMA: dict[str, pl.DataType] = {
    "arrival_s": pl.Float64(),
    "input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "prefix_hashes": pl.List(pl.Int64()),
}

#: Clock origin for traces that carry only relative times (Mooncake, ServeGen). Arbitrary but
#: fixed, a midnight, so that ServeGen's seconds-since-midnight keep their hour of day.
SYNTHETIC_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

#: Mooncake's conversation trace stamps arrivals in 3 s buckets (its README).
MOONCAKE_BUCKET_S = 3.0


class TraceError(ValueError):
    """A trace file cannot be read; the message names the file, line and column."""


@dataclass(frozen=True)
class Trace:
    """A canonical request frame and the wall-clock instant its ``arrival_s`` counts from."""

    requests: pl.DataFrame
    start: datetime


def canonical_frame(
    arrival_s: np.ndarray | list[float],
    input_tokens: np.ndarray | list[int],
    output_tokens: np.ndarray | list[int],
    prefix_hashes: list[list[int]] | None = None,
) -> pl.DataFrame:
    """Build a canonical request frame, sorted by arrival (ties keep their input order)."""
    n = len(arrival_s)
    frame = pl.DataFrame(
        {
            "arrival_s": pl.Series(arrival_s, dtype=pl.Float64),
            "input_tokens": pl.Series(input_tokens, dtype=pl.Int64),
            "output_tokens": pl.Series(output_tokens, dtype=pl.Int64),
            "prefix_hashes": pl.Series(
                prefix_hashes if prefix_hashes is not None else [[]] * n,
                dtype=pl.List(pl.Int64),
            ),
        }
    )
    return frame.sort("arrival_s", maintain_order=True)


def validate_requests(requests: pl.DataFrame) -> pl.DataFrame:
    """Check that ``requests`` is a canonical frame the simulator can replay, and return it typed.

    Raises
    ------
    ValueError
        If the frame is empty, a column is missing or mistyped, arrivals are negative or
        unsorted, or a request has fewer than one input or output token (every request must
        yield its first token).
    """
    missing = [c for c in REQUEST_SCHEMA if c not in requests.columns]
    if missing:
        raise ValueError(f"requests: missing columns {missing}; expected {list(REQUEST_SCHEMA)}")
    try:
        typed = requests.select([pl.col(c).cast(t, strict=True) for c, t in REQUEST_SCHEMA.items()])
    except pl.exceptions.InvalidOperationError as exc:
        raise ValueError(f"requests: a column has the wrong type: {exc}") from exc
    if typed.height == 0:
        raise ValueError("requests: no rows to replay")
    checks = {
        "arrival_s is null or negative": pl.col("arrival_s").is_null() | (pl.col("arrival_s") < 0),
        "input_tokens < 1": pl.col("input_tokens").fill_null(0) < 1,
        "output_tokens < 1": pl.col("output_tokens").fill_null(0) < 1,
    }
    for reason, bad in checks.items():
        rows = typed.with_row_index("row").filter(bad)["row"]
        if rows.len():
            raise ValueError(f"requests: row {rows[0]}: {reason} ({rows.len()} rows in all)")
    if not typed["arrival_s"].is_sorted():
        raise ValueError("requests: arrival_s is not sorted ascending")
    return typed


def thin(requests: pl.DataFrame, keep_ratio: float, *, seed: int = 0) -> pl.DataFrame:
    """Keep each request independently with probability ``keep_ratio``: the offered load scales
    by ``keep_ratio`` while the arrival pattern's shape and the length mix are preserved."""
    if not 0 < keep_ratio <= 1:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    keep = np.random.default_rng(seed).random(requests.height) < keep_ratio
    return requests.filter(pl.Series(keep))


def load_azure(path: Path = AZURE_CONV_CSV) -> Trace:
    """Load an Azure LLM inference trace (2023 format: ``TIMESTAMP,ContextTokens,GeneratedTokens``).

    ``TIMESTAMP`` is wall-clock time with 7 fractional digits and no time zone; it is read as UTC
    (the trace's README gives no zone, and UTC keeps the timestamps unambiguous). The trace start
    is the first timestamp. The format has no prefix hashes.
    """
    raw = read_csv_as_text(path, ["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
    stamps = _parse_column(
        path,
        raw,
        "TIMESTAMP",
        "a timestamp like 2023-11-16 18:15:46.6805900",
        lambda s: s.str.to_datetime(
            "%Y-%m-%d %H:%M:%S%.f", time_unit="ns", time_zone="UTC", strict=False
        ),
    )
    inputs = _parse_tokens(path, raw, "ContextTokens")
    outputs = _parse_tokens(path, raw, "GeneratedTokens")
    if raw.height == 0:
        raise TraceError(f"{path}: no requests")
    start = stamps.min()
    arrival_s = (stamps - start).dt.total_nanoseconds().to_numpy() / 1e9
    return Trace(
        requests=canonical_frame(arrival_s, inputs.to_numpy(), outputs.to_numpy()),
        start=start,
    )


def load_mooncake(
    path: Path = MOONCAKE_CONV_SLICE_JSONL,
    *,
    start: datetime = SYNTHETIC_EPOCH,
    seed: int = 0,
    bucket_s: float = MOONCAKE_BUCKET_S,
) -> Trace:
    """Load a Mooncake FAST'25 trace (JSON Lines: ``timestamp`` ms, ``input_length``,
    ``output_length``, ``hash_ids`` of 512-token blocks).

    The conversation trace stamps arrivals in ``bucket_s`` buckets, so each arrival is spread
    uniformly inside its bucket with a seeded generator; without that, ten requests would land
    on the same instant every 3 s. The trace has no wall-clock date: ``start`` says when it began.
    """
    stamps_ms, inputs, outputs, hashes = [], [], [], []
    with open(path, encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise TraceError(f"{path}:{lineno}: expected a JSON object")
            stamps_ms.append(_json_number(path, lineno, record, "timestamp"))
            inputs.append(_json_count(path, lineno, record, "input_length"))
            outputs.append(_json_count(path, lineno, record, "output_length"))
            hash_ids = record.get("hash_ids")
            if not isinstance(hash_ids, list) or not all(
                isinstance(h, int) and not isinstance(h, bool) for h in hash_ids
            ):
                raise TraceError(f"{path}:{lineno}: 'hash_ids' must be a list of integers")
            hashes.append(hash_ids)
    if not stamps_ms:
        raise TraceError(f"{path}: no requests")
    jitter_s = np.random.default_rng(seed).uniform(0.0, bucket_s, len(stamps_ms))
    arrival_s = np.asarray(stamps_ms, dtype=float) / 1e3 + jitter_s
    return Trace(requests=canonical_frame(arrival_s, inputs, outputs, hashes), start=start)


def default_trace() -> Trace:
    """The embedded default workload: Azure 2023 conversation trace (58 min, 19,366 requests)."""
    return load_azure(AZURE_CONV_CSV)


def read_csv_as_text(path: Path, required: list[str]) -> pl.DataFrame:
    """Read a CSV with every column as text, so that parse errors can name their line."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise TraceError(f"{path}: cannot read as CSV: {exc}") from exc
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise TraceError(f"{path}: missing column(s) {missing}; found {raw.columns}")
    return raw


def _parse_column(path, raw: pl.DataFrame, column: str, expected: str, parse) -> pl.Series:
    """Parse one text column; on failure name the first bad line (header is line 1)."""
    text = raw[column]
    parsed = parse(text)
    bad = (parsed.is_null() & text.is_not_null()) | text.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise TraceError(
            f"{path}:{row + 2}: column '{column}': cannot parse {text[row]!r} as {expected}"
        )
    return parsed


def _parse_tokens(path, raw: pl.DataFrame, column: str) -> pl.Series:
    """Parse a token-count column: integers, none negative."""
    counts = _parse_column(
        path, raw, column, "an integer", lambda s: s.str.strip_chars().cast(pl.Int64, strict=False)
    )
    negative = counts < 0
    if negative.any():
        row = int(negative.arg_true()[0])
        raise TraceError(
            f"{path}:{row + 2}: column '{column}': token count is negative ({counts[row]})"
        )
    return counts


def _json_number(path, lineno: int, record: dict, key: str) -> float:
    """A non-negative number from a JSON record, or a TraceError naming line and key."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        reason = "missing" if key not in record else f"not a non-negative number: {value!r}"
        raise TraceError(f"{path}:{lineno}: '{key}' {reason}")
    return float(value)


def _json_count(path, lineno: int, record: dict, key: str) -> int:
    """A non-negative integer (token count) from a JSON record."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        reason = "missing" if key not in record else f"not a non-negative integer: {value!r}"
        raise TraceError(f"{path}:{lineno}: '{key}' {reason}")
    return value
