"""The inbox sensor: files dropped into a directory are loaded by the ingest job.

A run per batch of new or changed files; the cursor is the newest modification time seen, so a
file is loaded again only when it is replaced (and then its partitions are replaced too).
"""

import json
import os
from pathlib import Path

import dagster as dg

from pipelines.jobs import ingest_job

INBOX_ENV_VAR = "HETEROSCALE_INBOX"
DEFAULT_INBOX = "inbox"


def _inbox() -> Path:
    return Path(os.environ.get(INBOX_ENV_VAR, DEFAULT_INBOX))


@dg.sensor(job=ingest_job, minimum_interval_seconds=30)
def inbox_sensor(context: dg.SensorEvaluationContext):
    """Request one ingest run for the files of the inbox changed since the last evaluation."""
    inbox = _inbox()
    if not inbox.is_dir():
        return dg.SkipReason(f"no inbox directory at {inbox} (set ${INBOX_ENV_VAR})")
    since = float(context.cursor or 0)
    changed = sorted(
        (p.stat().st_mtime, str(p))
        for p in inbox.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime > since
    )
    if not changed:
        return dg.SkipReason(f"no new files in {inbox}")
    newest = max(mtime for mtime, _ in changed)
    sources = [path for _, path in changed]
    context.update_cursor(str(newest))
    return dg.RunRequest(
        run_key=f"{newest}:{json.dumps(sources)}",
        run_config={"ops": {"telemetry__ingest_log": {"config": {"sources": sources}}}},
    )
