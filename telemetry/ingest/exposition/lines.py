"""How a sample line is read: a literal cut for the common shape, the exact grammar for the rest.

A line ``name{labels} value [timestamp]`` is cut at literal separators (``} `` after the labels,
then single spaces) with vectorised string search; its head, which repeats at every timestamp
of a series, is checked against the grammar and split once per distinct head and stands for a
series id from then on. Lines the cut does not fit (exemplars, tabs, odd spacing, a ``} ``
inside a label value, broken syntax) go through one vectorised regular expression, the exact
grammar; both paths accept exactly :data:`SAMPLE_LINE`.
"""

from __future__ import annotations

import re

import polars as pl

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


def parse_labels(text: str) -> dict[str, str] | None:
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


def cut(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``line`` and ``raw`` of every line with the ``head``, the ``value`` and ``ts_number`` of
    the cut, and ``_shape``: whether the cut fits (a numeric value, a numeric timestamp or
    none, nothing after it). A null or blank line does not fit."""
    raw = pl.col("raw")
    # The head ends at the first ``} ``, or at the first space without one; where that is the
    # wrong place, the head fails the grammar or the shape does not fit.
    head_end = pl.coalesce(raw.str.find("} ", literal=True) + 1, raw.str.find(" ", literal=True))
    fields = pl.col("_rest").struct
    return (
        lines.with_columns(head_end.alias("_end"))
        .with_columns(
            raw.str.slice(0, pl.col("_end")).alias("head"),
            raw.str.slice(pl.col("_end") + 1).str.split_exact(" ", 2).alias("_rest"),
        )
        .with_columns(
            fields.field("field_0").cast(pl.Float64, strict=False).alias("value"),
            fields.field("field_1").alias("_ts_text"),
            fields.field("field_2").alias("_extra"),
        )
        .with_columns(pl.col("_ts_text").cast(pl.Float64, strict=False).alias("ts_number"))
        .select(
            "line",
            "raw",
            "head",
            "value",
            "ts_number",
            (
                pl.col("value").is_not_null()
                & (pl.col("_ts_text").is_null() | pl.col("ts_number").is_not_null())
                & pl.col("_extra").is_null()
            )
            .fill_null(False)
            .alias("_shape"),
        )
    )


def head_table(heads: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(head, series)`` for each head of the grammar, and the series table (``series``,
    ``metric``, ``labels``): series are numbered by first appearance, and two heads that
    spell one series (``a`` and ``a{}``) share its id."""
    ids: dict[tuple[str, str], int] = {}
    numbered: dict[str, int] = {}
    for head in heads:
        match = SAMPLE_HEAD.fullmatch(head)
        if match:
            metric, labels = match.groups()
            numbered[head] = ids.setdefault((metric, labels or ""), len(ids))
    series = pl.DataFrame(
        {
            "series": list(ids.values()),
            "metric": [m for m, _ in ids],
            "labels": [labels for _, labels in ids],
        },
        schema={"series": pl.UInt32, "metric": pl.String, "labels": pl.String},
    )
    by_head = pl.DataFrame(
        {"head": list(numbered), "series": list(numbered.values())},
        schema={"head": pl.String, "series": pl.UInt32},
    )
    return by_head, series


def by_grammar(rest: pl.DataFrame, series: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The lines the cut did not fit (``line``, ``raw``; none blank), read with the exact
    grammar: ``metric`` (null: no match), ``labels``, ``value``, ``ts_number``, ``_ts_bad``
    (a timestamp that is not a number) and ``series``, numbering series not in ``series``
    after it; and the series table with them."""
    read = (
        rest.with_columns(
            pl.col("raw")
            .str.extract_groups(SAMPLE_LINE)
            .struct.rename_fields(["metric", "labels", "value_text", "ts_text"])
            .alias("m")
        )
        .unnest("m")
        .with_columns(
            pl.col("labels").fill_null(""),
            pl.col("value_text").cast(pl.Float64, strict=False).alias("value"),
            pl.col("ts_text").cast(pl.Float64, strict=False).alias("ts_number"),
        )
        .with_columns(
            (pl.col("ts_text").is_not_null() & pl.col("ts_number").is_null()).alias("_ts_bad")
        )
    )
    unseen = (
        read.filter(pl.col("metric").is_not_null())
        .select("metric", "labels")
        .unique(maintain_order=True)
        .join(series, on=["metric", "labels"], how="anti")
        .with_row_index("series", offset=series.height)
        .with_columns(pl.col("series").cast(pl.UInt32))
    )
    series = pl.concat([series, unseen.select(series.columns)])
    read = read.join(series, on=["metric", "labels"], how="left", maintain_order="left")
    return read.select(
        "line", "raw", "metric", "labels", "value", "ts_number", "_ts_bad", "series"
    ), series
