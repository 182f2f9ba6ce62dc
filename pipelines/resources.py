"""Resources: where results are stored, where telemetry comes from, which scenario the main job
runs, and the inbox the sensor watches.

The code location binds the deployment's choices with ``dg.EnvVar`` (:mod:`pipelines.definitions`),
so they are read when a run or sensor starts, in the process that runs it, and the UI shows
which variable each comes from; nothing here reads the environment.
"""

from datetime import UTC, date
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl

from dashboards import service_report
from scheduler import FLEET_TOPOLOGY_PATH
from simulator import ClusterSpec, Trace, default_cluster, load_trace, servegen_day
from simulator.cluster_file import load_cluster
from simulator.servegen import DAY_RATE_SCALE
from telemetry.ingest import Mapping, load_mapping
from telemetry.schema import INSTANCE_SAMPLES
from telemetry.store import TelemetryStore, ingested_db_path

REPORT_NAME = "heteroscale-report.html"
#: The telemetry source that simulates the scenario instead of loading telemetry.
SIMULATOR = "simulator"


#: Tags every step that opens the store. DuckDB lets one process at a time hold a file open to
#: write, so the jobs' executor runs these steps one at a time (:mod:`pipelines.jobs`); steps
#: without it (the curation sweep's) run beside them and each other.
STORE_STEP = {"heteroscale/store": "duckdb"}


class StoreResource(dg.ConfigurableResource):
    """The DuckDB store every asset reads from and writes to (``HETEROSCALE_DB``), and where
    the HTML report's index goes: ``report_file``, else beside the store."""

    db_path: str
    report_file: str = ""

    def report_path(self, service: str) -> Path:
        """``report_file``, else :data:`REPORT_NAME` beside the store, or, when the store holds
        the telemetry of several services, the service's own report beside their index
        (:meth:`services_index_path`)."""
        if self.report_file:
            return Path(self.report_file)
        index = self.services_index_path()
        return service_report(index, service) if index else Path(self.db_path).parent / REPORT_NAME

    def services_index_path(self) -> Path | None:
        """Where the index of the store's services goes (:data:`REPORT_NAME` beside the
        store), when it holds the telemetry of several and no ``report_file`` is set."""
        if self.report_file:
            return None
        services = self.store().distinct(INSTANCE_SAMPLES, ["service"])
        several = services is not None and services.height > 1
        return Path(self.db_path).parent / REPORT_NAME if several else None

    def store(self) -> TelemetryStore:
        return TelemetryStore(self.db_path)

    def ingested(self) -> "StoreResource":
        """Where ingested telemetry goes when this store holds a simulation:
        ``ingested/`` beside it (:func:`telemetry.store.ingested_db_path`)."""
        return StoreResource(db_path=str(ingested_db_path(Path(self.db_path))))

    def write(
        self, table: str, frame: pl.DataFrame, partition_by: tuple[str, ...] | None = None
    ) -> int:
        return self.store().write(table, frame, partition_by)

    def read(self, table: str, **where: object) -> pl.DataFrame:
        return self.store().read(table, where or None)


class TelemetrySourceResource(dg.ConfigurableResource):
    """Where the canonical telemetry's day partitions come from (``HETEROSCALE_SOURCES``).

    ``simulator`` (the embedded default) replays the scenario's trace through the simulated
    cluster; anything else is a comma-separated list of ``prometheus+http(s)://`` URLs and
    Parquet tables with zoned timestamps, each read for the partition's UTC day
    (docs/operations.md). ``mapping`` is a mapping file (docs/ingest.md), empty for none.
    """

    sources: str = SIMULATOR
    mapping: str = ""

    @property
    def simulated(self) -> bool:
        return self.sources.strip() == SIMULATOR

    def source_list(self) -> list[str]:
        return [s.strip() for s in self.sources.split(",") if s.strip()]

    def load_mapping(self) -> Mapping:
        return load_mapping(self.mapping or None)


class InboxResource(dg.ConfigurableResource):
    """The directory whose new files the inbox sensor loads (``HETEROSCALE_INBOX``)."""

    path: str = "inbox"

    def directory(self) -> Path:
        return Path(self.path)


@lru_cache(maxsize=2)
def _trace(trace_path: str, trace_format: str, study_day: int, rate_scale: float) -> Trace:
    """Traces are read once per process: the CLI asks for the day before the run simulates it."""
    if trace_path:
        return load_trace(trace_path, trace_format)
    return servegen_day(study_day, rate_scale=rate_scale)


class ScenarioResource(dg.ConfigurableResource):
    """What the main job runs: a real request trace, the service it stands for, the cluster,
    the fleet workload its policy is curated and backtested on, a topology.

    The defaults are the embedded ones: a real day of ServeGen m-large replayed at request
    level through the simulator's default heterogeneous P/D cluster (telemetry and the signal
    study); its 14 real days scaled to a fleet (curation and the backtest); the shipped fleet
    topology (placement). A ``trace_path`` replaces the day with a trace file, a
    ``cluster_path`` the cluster, and ``fleet_from_store`` the fleet workload with the offered
    load the store recorded (``policies.fleet.store_scenario``).
    """

    service: str = "chat"
    #: A cluster file (docs/simulator.md, "Your own cluster") the telemetry is simulated on and
    #: the fleet backtest runs; empty for the embedded L20/H20 cluster.
    cluster_path: str = ""
    #: Curate and backtest on the store's recorded offered load of ``service`` instead of
    #: ServeGen's days: the policy job on ingested telemetry (``heteroscale run --db``).
    fleet_from_store: bool = False
    #: A request trace to replay instead of the ServeGen day (e.g. the shipped Azure 2023
    #: hour, ``simulator.DEFAULT_TRACE_PATH``), in ``trace_format``.
    trace_path: str = ""
    trace_format: str = "azure"
    #: The ServeGen day (1-14) and its scale (``simulator.servegen_day``).
    study_day: int = 1
    study_rate_scale: float = DAY_RATE_SCALE
    #: Where the chosen policy's decisions are placed: the shipped fleet.
    topology_path: str = str(FLEET_TOPOLOGY_PATH)
    #: The fleet backtest's workload: ServeGen m-large's real days, scaled (policies.fleet).
    fleet_days: int = 14
    curation_days: int = 7
    fleet_rate_scale: float = 0.2
    #: The request-level check: this many hours from this hour of the first evaluation day.
    request_level_start_h: float = 7.0
    request_level_hours: float = 1.0
    interval_s: float = 15.0
    #: Processes the fleet backtest's policies spread over inside its step (the results are
    #: the same for any number; ``policies.parallel.spread``).
    backtest_workers: int = 1
    #: The window the signal study judges signals over.
    signal_window_s: float = 60.0

    def trace(self) -> Trace:
        """The requests the telemetry is simulated from."""
        return _trace(self.trace_path, self.trace_format, self.study_day, self.study_rate_scale)

    def trace_day(self) -> date:
        """The UTC day the trace starts on: the telemetry partition the simulator fills."""
        return self.trace().start.astimezone(UTC).date()

    def cluster(self) -> ClusterSpec:
        """The cluster file's, else the embedded cluster."""
        return load_cluster(self.cluster_path) if self.cluster_path else default_cluster()

    def describe_trace(self) -> str:
        if self.trace_path:
            return f"{self.trace_path} ({self.trace_format})"
        return f"ServeGen m-large day {self.study_day} x {self.study_rate_scale:g}"
