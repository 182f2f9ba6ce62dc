"""Asset metadata as Dagster's typed values: numbers the UI can plot across materialisations,
tables as Markdown, and the row count under ``dagster/row_count``, the key the UI shows."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import dagster as dg
import polars as pl

ROW_COUNT = "dagster/row_count"


def typed(values: Mapping[str, object]) -> dict[str, dg.MetadataValue]:
    """Each plain value as its ``MetadataValue``: bool, int, float, text, null; values that
    already are one pass through."""

    def one(value: object) -> dg.MetadataValue:
        if isinstance(value, dg.MetadataValue):
            return value
        if value is None:
            return dg.MetadataValue.null()
        if isinstance(value, bool):
            return dg.MetadataValue.bool(value)
        if isinstance(value, numbers.Integral):
            return dg.MetadataValue.int(int(value))
        if isinstance(value, numbers.Real):
            return dg.MetadataValue.float(float(value))
        return dg.MetadataValue.text(str(value))

    return {key: one(value) for key, value in values.items()}


def markdown_table(frame: pl.DataFrame, max_rows: int = 30, digits: int = 3) -> dg.MetadataValue:
    """The first ``max_rows`` rows of ``frame`` as a Markdown table."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.head(max_rows).rows()]
    more = [f"\n{frame.height - max_rows} more rows"] if frame.height > max_rows else []
    return dg.MetadataValue.md("\n".join([header, rule, *body, *more]))
