"""Prometheus text and OpenMetrics exposition: the parser and the writer, one format, one home.

:func:`parse` turns exposition text (one scrape, or a backfill file of many timestamps) into
raw samples; :func:`write_openmetrics` turns canonical frames back into exposition text with
the metric names real exporters use, for backfilling a Prometheus and for round-trip tests.
"""

from telemetry.ingest.exposition.parse import (
    RawSamples,
    parse,
    parse_bytes,
    scrape_time_from_name,
)
from telemetry.ingest.exposition.write import HISTOGRAM_BUCKETS_S, write_openmetrics

__all__ = [
    "HISTOGRAM_BUCKETS_S",
    "RawSamples",
    "parse",
    "parse_bytes",
    "scrape_time_from_name",
    "write_openmetrics",
]
