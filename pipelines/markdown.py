"""Frames as Markdown tables for asset metadata shown in the Dagster UI."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, max_rows: int = 30, digits: int = 3) -> str:
    """Render the first ``max_rows`` rows of ``frame`` as a Markdown table."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.head(max_rows).rows()]
    more = [f"\n{frame.height - max_rows} more rows"] if frame.height > max_rows else []
    return "\n".join([header, rule, *body, *more])
