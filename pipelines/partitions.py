"""The store's telemetry partitions as Dagster partitions: one per UTC day.

The store keys telemetry by service x day; Dagster partitions it by day alone. A day is what a
source can be asked for (a Prometheus range, a Parquet table's rows of that day) and what a
backfill or the daily schedule names; the services are whatever the day's telemetry holds, so
they stay a column inside the partition rather than a dimension that would have to be known
before loading (docs/operations.md, "Partitions").
"""

import dagster as dg

#: The first day a backfill can name: before the oldest telemetry shipped (Azure 2023).
TELEMETRY_START = "2023-01-01"
TELEMETRY_DAYS = dg.DailyPartitionsDefinition(start_date=TELEMETRY_START, timezone="UTC")
#: Yesterday's telemetry is loaded at 01:00 UTC and expected by 05:00; the policy is refreshed
#: at 06:00 on whatever has arrived.
INGEST_CRON_HOUR = 1
DAILY_DEADLINE_CRON = "0 5 * * *"
POLICY_REFRESH_CRON = "0 6 * * *"
