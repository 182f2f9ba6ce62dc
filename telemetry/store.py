"""The DuckDB store: one file (``HETEROSCALE_DB``) holding every table the pipelines produce.

Writes are partitioned and idempotent: writing a partition replaces whatever that partition
held, inside one transaction, so a re-run never duplicates rows and a failed write leaves the
previous partition intact. Canonical telemetry tables are validated with
:func:`telemetry.schema.conform` before they are written; derived tables (signal scores,
decisions, placements) take their schema from the frame that first creates them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from telemetry.schema import CANONICAL_TABLES, conform

DB_ENV_VAR = "HETEROSCALE_DB"
DEFAULT_DB_PATH = Path("out") / "heteroscale.duckdb"


def default_db_path() -> Path:
    """The store's path: ``$HETEROSCALE_DB`` when set, else ``out/heteroscale.duckdb``."""
    return Path(os.environ.get(DB_ENV_VAR, DEFAULT_DB_PATH))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Evolve ``table`` additively so it can take every column of the registered ``incoming``."""
    existing = {row[0] for row in conn.execute(f"DESCRIBE {_quote(table)}").fetchall()}
    for column, column_type, *_ in conn.execute("DESCRIBE SELECT * FROM incoming").fetchall():
        if column not in existing:
            conn.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(column)} {column_type}")


class TelemetryStore:
    """Partitioned, idempotent reads and writes of polars frames in one DuckDB file.

    DuckDB allows one writer per file, so each call opens and closes its own connection;
    callers keep DuckDB-heavy steps serial.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def _connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect(str(self.path), read_only=read_only)
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def write(
        self, table: str, frame: pl.DataFrame, partition_by: Sequence[str] | None = None
    ) -> int:
        """Replace, in one transaction, every partition of ``table`` that ``frame`` touches.

        A partition is one distinct combination of the ``partition_by`` columns. Rows of the
        table in partitions ``frame`` does not touch are kept. The table evolves additively: a
        column it lacks is added (older rows read null there), and a column the frame lacks is
        null in the new rows. Canonical telemetry tables are
        conformed first and get their ``day`` (UTC date of ``ts``) derived here, so their
        partitions are always service x day; derived tables must name ``partition_by``.
        Returns the number of rows written.

        Raises
        ------
        telemetry.schema.SchemaError
            If a canonical table's frame does not conform; nothing is written.
        """
        if table in CANONICAL_TABLES:
            frame = conform(frame, table).with_columns(pl.col("ts").dt.date().alias("day"))
            partition_by = CANONICAL_TABLES[table].partition_columns
        if not partition_by:
            raise ValueError(f"{table}: name the partition columns a write replaces")
        missing = [c for c in partition_by if c not in frame.columns]
        if missing:
            raise ValueError(f"{table}: partition columns {missing} are not in the frame")
        matches = " AND ".join(f"k.{_quote(c)} = t.{_quote(c)}" for c in partition_by)
        keys = ", ".join(_quote(c) for c in partition_by)
        with self._connect() as conn:
            conn.register("incoming", frame)
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_quote(table)} AS SELECT * FROM incoming LIMIT 0"
                )
                _add_missing_columns(conn, table)
                conn.execute(
                    f"DELETE FROM {_quote(table)} t WHERE EXISTS "
                    f"(SELECT 1 FROM (SELECT DISTINCT {keys} FROM incoming) k WHERE {matches})"
                )
                conn.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM incoming")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
        return frame.height

    def read(self, table: str, where: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Rows of ``table`` (optionally only those whose columns equal ``where``)."""
        sql = f"SELECT * FROM {_quote(table)}"
        params: list[Any] = []
        if where:
            sql += " WHERE " + " AND ".join(f"{_quote(c)} = ?" for c in where)
            params = list(where.values())
        with self._connect(read_only=True) as conn:
            return conn.sql(sql, params=params).pl()

    def row_counts(self) -> dict[str, int]:
        """Rows per table, for run summaries and notes."""
        if not self.path.exists():
            return {}
        with self._connect(read_only=True) as conn:
            tables = [r[0] for r in conn.execute("SHOW TABLES").fetchall()]
            return {
                t: conn.execute(f"SELECT count(*) FROM {_quote(t)}").fetchone()[0]
                for t in sorted(tables)
            }
