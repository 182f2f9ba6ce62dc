"""Telemetry ingestion: Prometheus, exposition files and tables into the canonical store.

``ingest(sources, store)`` is the one entry point (the CLI, the Dagster asset and the tests
call it); docs/ingest.md explains sources, the mapping file and what is quarantined and why.
"""

from telemetry.ingest.errors import IngestError
from telemetry.ingest.load import INGEST_LOG, LoadReport, ingest, ingest_by_day, prepare, write
from telemetry.ingest.mapping import Mapping, load_mapping
from telemetry.ingest.quarantine import QUARANTINE

__all__ = [
    "INGEST_LOG",
    "QUARANTINE",
    "IngestError",
    "LoadReport",
    "Mapping",
    "ingest",
    "ingest_by_day",
    "load_mapping",
    "prepare",
    "write",
]
