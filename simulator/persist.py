"""Storing a simulated run: its canonical telemetry and its per-request outcomes."""

from __future__ import annotations

import polars as pl

from simulator.engine import SimulationResult
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TableWrite, TelemetryStore

REQUEST_OUTCOMES = "request_outcomes"


def write_result(
    store: TelemetryStore, result: SimulationResult, *, service: str
) -> dict[str, int]:
    """Write ``result`` to ``store`` in one transaction, replacing the service's earlier run;
    rows per table.

    Telemetry goes to the canonical tables (partitioned service x day); request outcomes,
    tagged with the service, replace the service's previous outcomes.
    """
    writes = [
        TableWrite(INSTANCE_SAMPLES, result.instance_samples),
        TableWrite(SERVICE_LOAD, result.service_load),
        TableWrite(
            REQUEST_OUTCOMES, result.requests.with_columns(service=pl.lit(service)), ("service",)
        ),
    ]
    rows = store.write_many(writes)
    return {write.table: n for write, n in zip(writes, rows, strict=True)}
