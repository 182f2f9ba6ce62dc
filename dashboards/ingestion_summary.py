"""How the telemetry got into the store, in words: each load's row accounting, what was
quarantined and why, and which offered load was derived rather than measured.

A store filled by the simulator has no ingestion to report, and the page says so instead of
showing empty tables: a reader should never mistake a simulated week for a measured one.
"""

from __future__ import annotations

import json

import polars as pl

from telemetry.ingest.quarantine import REASONS

#: The columns of a reason's first quarantined place the page quotes.
FIRST = ("source", "location", "detail")


def ingestion_lines(
    *,
    service: str,
    ingest_log: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    service_load_origin: pl.DataFrame | None,
) -> list[str]:
    """What ingestion loaded, left out and derived.

    Parameters
    ----------
    service : str
        The report's service (to pick its days out of ``service_load_origin``).
    ingest_log : pl.DataFrame or None
        ``ingest_log`` (:func:`telemetry.ingest.write`): a row per load; None when nothing
        was ever ingested into the store.
    quarantine : pl.DataFrame or None
        ``quarantine`` (:data:`telemetry.ingest.quarantine.QUARANTINE_SCHEMA`).
    service_load_origin : pl.DataFrame or None
        Per service and day whether the offered load was ``measured`` or ``derived``.

    Returns
    -------
    list of str
        Without a log, one line saying the telemetry was simulated. Otherwise a line per load
        (sources, rows read = loaded + skipped + quarantined, partitions, notes), a line per
        quarantine reason (rows, places, an example and what to do about it), and the days
        whose offered load was derived from served work.
    """
    if ingest_log is None or ingest_log.is_empty():
        return [
            "No telemetry was ingested into this store: the simulator produced it, replaying "
            "a real trace through a simulated cluster (Simulator fidelity says how close that "
            "comes to measured serving). Nothing was read from a cluster, so nothing was "
            "quarantined or skipped, and every signal the simulator models was recorded."
        ]
    lines = [_load_line(r) for r in ingest_log.sort("loaded_at").iter_rows(named=True)]
    lines += quarantine_lines(quarantine)
    if service_load_origin is not None:
        derived = service_load_origin.filter(
            (pl.col("service") == service) & (pl.col("origin") == "derived")
        )
        if derived.height:
            days = ", ".join(f"{d:%Y-%m-%d}" for d in derived["day"].unique().sort())
            lines.append(
                f"Offered load not measured on {days}: no frontend counters were loaded, so it "
                "was derived from the work served, which cannot show load the cluster turned "
                "away."
            )
    return lines


def _load_line(log: dict) -> str:
    notes = json.loads(log["notes"] or "{}")
    said = "; ".join(f"{key}: {value}" for key, value in sorted(notes.items()))
    return (
        f"Load {log['load_id']} at {log['loaded_at']:%Y-%m-%d %H:%M} UTC from {log['sources']}: "
        f"{log['rows_read']:,} rows read = {log['rows_loaded']:,} loaded + "
        f"{log['rows_skipped']:,} skipped (metrics heteroscale reads no signal from) + "
        f"{log['rows_quarantined']:,} quarantined; {log['partitions']} partition(s) written"
        + (f"; notes: {said}" if said else "")
        + "."
    )


def quarantine_lines(quarantine: pl.DataFrame | None) -> list[str]:
    """One line per reason, most rows first: rows, places, the first place and its detail,
    and what the user can do (:data:`telemetry.ingest.quarantine.REASONS`)."""
    if quarantine is None or quarantine.is_empty():
        return ["Quarantine: empty; every row read was loaded or skipped."]
    by_reason = (
        quarantine.group_by("reason")
        .agg(
            pl.col("rows").sum(),
            pl.len().alias("places"),
            *(pl.col(c).sort_by("source", "location").first() for c in FIRST),
        )
        .sort("rows", "reason", descending=[True, False])
    )
    return [
        f"Quarantined for {r['reason']}: {r['rows']:,} row(s) at {r['places']:,} place(s), "
        f"first {r['source']} {r['location']} ({r['detail']}); "
        f"{REASONS[r['reason']]}."
        for r in by_reason.iter_rows(named=True)
    ]
