"""The store's tables as hive-partitioned Parquet under a root: a local folder or, through
DuckDB's httpfs extension, an object-storage URL (``s3://bucket/prefix``, ``gs://...``).

A DuckDB file allows one writer; Parquet partitions do not share a file, so stores on several
machines can export their telemetry into one root and any reader can query it (docs/operations.md,
"Parquet partitions and object storage"). Layout, one file per partition::

    ROOT/instance_samples/service=chat/day=2025-03-01/data.parquet
    ROOT/signal_scores/data.parquet          (a derived table: one file, the whole table)

Every file also holds its partition columns, so a read gives the DuckDB store's columns in
its order. A partition is replaced whole: DuckDB writes it to ``tmp_data.parquet`` beside it
and renames it (local disk), or uploads it as one object that appears only once complete
(object storage); readers glob ``data.parquet`` only, so never see the temporary file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import polars as pl

from telemetry.schema import CANONICAL_TABLES
from telemetry.store import TelemetryStore, _quote, connect, select_where

PARTITION_FILE = "data.parquet"

#: DuckDB types of the canonical partition columns (a service name, a UTC day). Hive paths hold
#: text, and DuckDB would otherwise guess a type from it: a service named "123" as a number.
HIVE_TYPES = {"service": "VARCHAR", "day": "DATE"}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_of(file: str) -> str:
    """The table a partition's file belongs to: the nearest folder above it that is not a
    hive key (DuckDB's glob may spell the root differently, e.g. without ``./``)."""
    return next(f for f in reversed(file.split("/")[:-1]) if "=" not in f)


def _partition_columns(table: str) -> tuple[str, ...]:
    """The canonical tables' partition key; a derived table is one partition."""
    spec = CANONICAL_TABLES.get(table)
    return spec.partition_columns if spec else ()


class ParquetStore:
    """Reads of the store's tables from Parquet partitions under ``root``, and their export
    from a :class:`TelemetryStore`; ``read``, ``distinct`` and ``row_counts`` answer as the
    DuckDB store's do.

    A URL root takes the same path as a local one, except that a local folder is created
    before a partition is written; httpfs and its credentials are DuckDB's settings
    (a persistent secret), not this class's.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = str(root).rstrip("/")

    def _is_local(self) -> bool:
        return "://" not in self.root

    def _check_root(self, conn: duckdb.DuckDBPyConnection) -> None:
        if conn.execute(f"SELECT count(*) FROM glob({_literal(self.root)})").fetchone()[0]:
            raise ValueError(f"the Parquet store's root {self.root} is a file, not a folder")

    def _files(self, conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
        """Files under the root matching the glob ``pattern``."""
        self._check_root(conn)
        glob = _literal(f"{self.root}/{pattern}")
        return [row[0] for row in conn.execute(f"SELECT file FROM glob({glob})").fetchall()]

    def _scan(self, conn: duckdb.DuckDBPyConnection, table: str) -> str | None:
        """The ``read_parquet`` of ``table``, None when it was never exported."""
        if not self._files(conn, f"{table}/**/{PARTITION_FILE}"):
            return None
        return self._reader(table)

    def _reader(self, table: str) -> str:
        """The ``read_parquet`` of an exported ``table``. Hive partitioning lets a filter on a
        partition column skip the other partitions' files unopened."""
        glob = _literal(f"{self.root}/{table}/**/{PARTITION_FILE}")
        columns = _partition_columns(table)
        if not columns:
            return f"read_parquet({glob}, hive_partitioning = false)"
        types = ", ".join(f"{_literal(c)}: {_literal(HIVE_TYPES[c])}" for c in columns)
        return f"read_parquet({glob}, hive_partitioning = true, hive_types = {{{types}}})"

    def _path(self, table: str, partition: Mapping[str, Any]) -> str:
        """A partition's file; values are percent-encoded, as DuckDB's hive reader decodes."""
        keys = [f"{c}={quote(str(v), safe='')}" for c, v in partition.items()]
        return "/".join([self.root, table, *keys, PARTITION_FILE])

    def export(self, store: TelemetryStore, tables: Sequence[str] | None = None) -> dict[str, int]:
        """Write ``tables`` of ``store`` (default: all) under the root; returns rows per table.

        Every partition the store holds replaces the root's, whole; partitions the store does
        not hold are kept, so several stores can export their services or days to one root.
        A canonical table is one partition per service x day; a derived table is replaced
        whole. A failure leaves each partition either old or new, never half written, but
        the partitions written before it stay new. Two exports must not write one partition
        at the same time.

        Raises
        ------
        ValueError
            When the root is a file, or a named table is not in the store.
        """
        with connect(str(store.path), read_only=True) as conn:
            held = sorted(row[0] for row in conn.execute("SHOW TABLES").fetchall())
            missing = sorted(set(tables or ()) - set(held))
            if missing:
                raise ValueError(f"{store.path} has no tables {missing}; it has {held}")
            self._check_root(conn)
            written = {}
            for table in held if tables is None else tables:
                source = _quote(table)
                columns = _partition_columns(table)
                keys = ", ".join(_quote(c) for c in columns)
                partitions = (
                    conn.execute(f"SELECT DISTINCT {keys} FROM {source}").fetchall()
                    if columns
                    else [()]
                )
                for values in partitions:
                    partition = dict(zip(columns, values, strict=True))
                    path = self._path(table, partition)
                    if self._is_local():
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                    sql, params = select_where(source, partition)
                    conn.execute(
                        f"COPY ({sql}) TO {_literal(path)} (FORMAT parquet, USE_TMP_FILE true)",
                        params,
                    )
                written[table] = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            return written

    def read(self, table: str, where: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Rows of ``table`` (optionally only those whose columns equal ``where``); a filter on
        ``service`` or ``day`` reads only those partitions' files.

        Raises
        ------
        ValueError
            When the root is a file or ``table`` was never exported there.
        """
        with connect(":memory:") as conn:
            scan = self._scan(conn, table)
            if scan is None:
                raise ValueError(f"{table} was never exported to the Parquet store {self.root}")
            sql, params = select_where(scan, where)
            return conn.sql(sql, params=params).pl()

    def distinct(self, table: str, columns: Sequence[str]) -> pl.DataFrame | None:
        """The distinct combinations of ``columns`` in ``table``; None when it was never
        exported, as the DuckDB store answers for a table it lacks."""
        with connect(":memory:") as conn:
            scan = self._scan(conn, table)
            if scan is None:
                return None
            selected = ", ".join(_quote(c) for c in columns)
            return conn.sql(f"SELECT DISTINCT {selected} FROM {scan}").pl()

    def row_counts(self) -> dict[str, int]:
        """Rows per exported table (one listing of the root, not one per table)."""
        with connect(":memory:") as conn:
            files = self._files(conn, f"*/**/{PARTITION_FILE}")
            tables = sorted({_table_of(f) for f in files})
            return {
                t: conn.execute(f"SELECT count(*) FROM {self._reader(t)}").fetchone()[0]
                for t in tables
            }
