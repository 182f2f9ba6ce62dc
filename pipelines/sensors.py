"""Sensors: files dropped into the inbox are loaded by the ingest job; telemetry freshness is
evaluated as time passes.

The inbox sensor requests a run per batch of new or changed files; the cursor is the newest
modification time seen, so a file is loaded again only when it is replaced (and then its
partitions are replaced too).
"""

import json
import warnings

import dagster as dg

from pipelines.assets.telemetry import TELEMETRY_FRESHNESS_CHECKS
from pipelines.jobs import ingest_job
from pipelines.resources import InboxResource


@dg.sensor(job=ingest_job, minimum_interval_seconds=30)
def inbox_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource):
    """Request one ingest run for the files of the inbox changed since the last evaluation."""
    directory = inbox.directory()
    if not directory.is_dir():
        return dg.SkipReason(f"no inbox directory at {directory} (set $HETEROSCALE_INBOX)")
    since = float(context.cursor or 0)
    changed = sorted(
        (p.stat().st_mtime, str(p))
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime > since
    )
    if not changed:
        return dg.SkipReason(f"no new files in {directory}")
    newest = max(mtime for mtime, _ in changed)
    sources = [path for _, path in changed]
    context.update_cursor(str(newest))
    return dg.RunRequest(
        run_key=f"{newest}:{json.dumps(sources)}",
        run_config={"ops": {"telemetry__ingest_log": {"config": {"sources": sources}}}},
    )


#: Re-evaluates the telemetry freshness checks as the deadline passes (their builder's
#: supersession is discussed beside them).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    telemetry_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=TELEMETRY_FRESHNESS_CHECKS, name="telemetry_freshness_sensor"
    )
