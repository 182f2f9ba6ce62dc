"""Prometheus text and OpenMetrics exposition: the parser and the writer, one format, one home.

:func:`parse` and :func:`parse_file` turn exposition text (one scrape, or a backfill file of
many timestamps) into raw samples; :func:`write_openmetrics` turns canonical frames back into
exposition text with the metric names real exporters use, for backfilling a Prometheus and for
round-trip tests.
"""

from telemetry.ingest.exposition.parse import (
    parse,
    parse_bytes,
    parse_file,
    scrape_time_from_name,
)
from telemetry.ingest.exposition.raw import RawSamples
from telemetry.ingest.exposition.write import HISTOGRAM_BUCKETS_S, write_openmetrics

__all__ = [
    "HISTOGRAM_BUCKETS_S",
    "RawSamples",
    "parse",
    "parse_bytes",
    "parse_file",
    "scrape_time_from_name",
    "write_openmetrics",
]
