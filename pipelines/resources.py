"""Resources: where results are stored and which scenario the main job runs."""

from pathlib import Path

import dagster as dg
import polars as pl

from scheduler import FLEET_TOPOLOGY_PATH
from simulator import DEFAULT_TRACE_PATH
from telemetry.store import TelemetryStore, default_db_path

REPORT_NAME = "heteroscale-report.html"


class StoreResource(dg.ConfigurableResource):
    """The DuckDB store every asset reads from and writes to (``HETEROSCALE_DB``), and the
    folder beside it where the HTML report goes."""

    db_path: str = str(default_db_path())

    def report_path(self) -> Path:
        return Path(self.db_path).parent / REPORT_NAME

    def store(self) -> TelemetryStore:
        return TelemetryStore(self.db_path)

    def write(
        self, table: str, frame: pl.DataFrame, partition_by: tuple[str, ...] | None = None
    ) -> int:
        return self.store().write(table, frame, partition_by)

    def read(self, table: str, **where: object) -> pl.DataFrame:
        return self.store().read(table, where or None)


class ScenarioResource(dg.ConfigurableResource):
    """What the main job runs: a real request trace, the service it stands for, the fleet
    workload its policy is curated and backtested on, a topology.

    The defaults are the embedded ones: the Azure 2023 conversation trace replayed through the
    simulator's default heterogeneous P/D cluster (telemetry and the signal study); ServeGen
    m-large's 14 real days scaled to a fleet (curation and the backtest); the shipped fleet
    topology (placement).
    """

    service: str = "chat"
    trace_path: str = str(DEFAULT_TRACE_PATH)
    trace_format: str = "azure"
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
    #: The window the signal study judges signals over.
    signal_window_s: float = 60.0
