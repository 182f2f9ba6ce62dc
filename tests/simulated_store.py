"""Short stores for the commands that run on a store: the Azure 2023 conversation hour (19,366
requests, 235 intervals of 15 s) replayed on the embedded cluster as service ``chat``, either
as `heteroscale simulate` stores it (with request outcomes) or as `heteroscale ingest` loads its
telemetry exported to Parquet (instance samples and offered load only). A second or two each."""

from pathlib import Path

from simulator import DEFAULT_TRACE_PATH, default_cluster, load_trace, simulate
from simulator.persist import write_result
from telemetry.ingest import ingest
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import TelemetryStore


def azure_hour_store(path: Path) -> Path:
    trace = load_trace(DEFAULT_TRACE_PATH, "azure")
    result = simulate(
        trace.requests, default_cluster(), service="chat", start=trace.start, interval_s=15.0
    )
    write_result(TelemetryStore(path), result, service="chat")
    return path


def ingested_azure_hour_store(path: Path) -> Path:
    simulated = TelemetryStore(azure_hour_store(path.with_name(f"simulated-{path.name}")))
    exports = []
    for table in (INSTANCE_SAMPLES, SERVICE_LOAD):
        exports.append(path.with_name(f"{table}.parquet"))
        simulated.read(table).drop("day").write_parquet(exports[-1])
    ingest([str(p) for p in exports], TelemetryStore(path))
    return path
