"""The DuckDB store: one file (``HETEROSCALE_DB``) holding every table the pipelines produce.

Writes are partitioned and idempotent: writing a partition replaces whatever that partition
held, inside one transaction, so a re-run never duplicates rows and a failed write leaves the
previous partition intact. Canonical telemetry tables are validated with
:func:`telemetry.schema.conform` before they are written; derived tables (signal scores,
decisions, placements) take their schema from the frame that first creates them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from telemetry.schema import CANONICAL_TABLES, conform

DB_ENV_VAR = "HETEROSCALE_DB"
DEFAULT_DB_PATH = Path("out") / "heteroscale.duckdb"


def ingested_db_path(db_path: Path) -> Path:
    """The store for ingested telemetry beside the store ``db_path`` holding a simulation
    (``ingested/`` in its folder): simulated and ingested telemetry never share a store by
    default, or each would enter the other's study and gap check."""
    return db_path.parent / "ingested" / db_path.name


def default_db_path(*, ingested: bool = False) -> Path:
    """The store's path: ``$HETEROSCALE_DB`` when set, else ``out/heteroscale.duckdb``, or
    for ingested telemetry ``out/ingested/heteroscale.duckdb``."""
    if DB_ENV_VAR in os.environ:
        return Path(os.environ[DB_ENV_VAR])
    return ingested_db_path(DEFAULT_DB_PATH) if ingested else DEFAULT_DB_PATH


def one_service(
    services: Sequence[str], named: str | None, *, held: str = "the store holds"
) -> str:
    """The service a command works on: the one named, else the only one there is.

    Raises
    ------
    ValueError
        When the named service is not among ``services``, or none is named and there are
        several (or none), saying which there are.
    """
    there = sorted(set(services))
    service = named or (there[0] if len(there) == 1 else None)
    if service not in there:
        raise ValueError(f"name one service with --service: {held} {there}")
    return service


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def connect(database: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the store's session settings, so that a DuckDB file and the
    Parquet mirror (telemetry.parquet_store) read back the same types and time zone."""
    conn = duckdb.connect(database, read_only=read_only)
    conn.execute("SET TimeZone = 'UTC'")
    # Rows of a table have no order (readers sort); this lets inserts use every core.
    conn.execute("SET preserve_insertion_order = false")
    return conn


def select_where(source: str, where: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """``SELECT *`` of ``source`` (a table or a table function), only rows whose columns equal
    ``where``, with its parameters."""
    if not where:
        return f"SELECT * FROM {source}", []
    matches = " AND ".join(f"{_quote(c)} = ?" for c in where)
    return f"SELECT * FROM {source} WHERE {matches}", list(where.values())


@dataclass(frozen=True)
class TableWrite:
    """One partition replacement of :meth:`TelemetryStore.write_many`.

    ``also_clear`` names partitions (a frame of the ``partition_by`` columns) to empty even
    where ``frame`` has no rows for them, e.g. the quarantine of a source now loaded cleanly.
    """

    table: str
    frame: pl.DataFrame
    partition_by: Sequence[str] | None = None
    also_clear: pl.DataFrame | None = None


def _prepare(write: TableWrite) -> TableWrite:
    """Conform a canonical frame (deriving ``day``) and check the partition columns."""
    table, frame, partition_by = write.table, write.frame, write.partition_by
    if table in CANONICAL_TABLES:
        frame = conform(frame, table).with_columns(pl.col("ts").dt.date().alias("day"))
        partition_by = CANONICAL_TABLES[table].partition_columns
    if not partition_by:
        raise ValueError(f"{table}: name the partition columns a write replaces")
    missing = [c for c in partition_by if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: partition columns {missing} are not in the frame")
    return TableWrite(table, frame, tuple(partition_by), write.also_clear)


def _replace(conn: duckdb.DuckDBPyConnection, write: TableWrite, incoming: str) -> None:
    """Inside the caller's transaction: create or evolve the table, delete the partitions the
    frame touches, insert the frame."""
    table = _quote(write.table)
    conn.register(incoming, write.frame)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM {incoming} LIMIT 0")
    existing = {row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall()}
    for column, column_type, *_ in conn.execute(f"DESCRIBE SELECT * FROM {incoming}").fetchall():
        if column not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(column)} {column_type}")
    keys = ", ".join(_quote(c) for c in write.partition_by)
    matches = " AND ".join(f"k.{_quote(c)} = t.{_quote(c)}" for c in write.partition_by)
    touched = f"SELECT DISTINCT {keys} FROM {incoming}"
    if write.also_clear is not None:
        conn.register(f"{incoming}_clear", write.also_clear.select(write.partition_by))
        touched += f" UNION SELECT {keys} FROM {incoming}_clear"
    conn.execute(
        f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM ({touched}) k WHERE {matches})"
    )
    conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {incoming}")


#: How long a store call waits for another process to let go of the file before it fails.
LOCK_WAIT_S = 600.0


class TelemetryStore:
    """Partitioned, idempotent reads and writes of polars frames in one DuckDB file.

    DuckDB lets one process at a time open a file to write (and none to read meanwhile), so
    each call opens and closes its own connection, and one that finds the file held by another
    process waits for it, up to ``lock_wait_s``: processes sharing a store (runs of several
    services at once) take turns call by call.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_wait_s: float = LOCK_WAIT_S):
        self.path = Path(path)
        self.lock_wait_s = lock_wait_s

    def _connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, pause_s = time.monotonic() + self.lock_wait_s, 0.01
        while True:
            try:
                return connect(str(self.path), read_only=read_only)
            except duckdb.IOException as error:
                if "Could not set lock" not in str(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause_s)
            pause_s = min(2 * pause_s, 0.5)

    def write(
        self, table: str, frame: pl.DataFrame, partition_by: Sequence[str] | None = None
    ) -> int:
        """Replace every partition of ``table`` that ``frame`` touches; see :meth:`write_many`.

        Returns the number of rows written.
        """
        return self.write_many([TableWrite(table, frame, partition_by)])[0]

    def write_many(self, writes: Sequence[TableWrite]) -> list[int]:
        """Apply several partition replacements in ONE transaction: all of them, or none.

        For each write, a partition is one distinct combination of its ``partition_by``
        columns; every partition its frame touches is replaced, the others are kept. Tables
        evolve additively: a column a table lacks is added (older rows read null there), and
        a column a frame lacks is null in its rows. Canonical telemetry tables are conformed
        first and get their ``day`` (UTC date of ``ts``) derived here, so their partitions are
        always service x day; derived tables must name ``partition_by``. Returns the rows
        written per write.

        Raises
        ------
        telemetry.schema.SchemaError
            If a canonical table's frame does not conform; nothing is written.
        ValueError
            If a derived table's partition columns are missing; nothing is written.
        """
        prepared = [_prepare(w) for w in writes]
        with self._connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                for k, write in enumerate(prepared):
                    _replace(conn, write, f"incoming_{k}")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
        return [w.frame.height for w in prepared]

    def read(self, table: str, where: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Rows of ``table`` (optionally only those whose columns equal ``where``)."""
        sql, params = select_where(_quote(table), where)
        with self._connect(read_only=True) as conn:
            return conn.sql(sql, params=params).pl()

    def distinct(self, table: str, columns: Sequence[str]) -> pl.DataFrame | None:
        """The distinct combinations of ``columns`` in ``table``, e.g. its partitions; None
        when the store or the table does not exist yet."""
        if not self.path.exists():
            return None
        with self._connect(read_only=True) as conn:
            if table not in {row[0] for row in conn.execute("SHOW TABLES").fetchall()}:
                return None
            selected = ", ".join(_quote(c) for c in columns)
            return conn.sql(f"SELECT DISTINCT {selected} FROM {_quote(table)}").pl()

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
