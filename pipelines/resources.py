"""Resources: where results are stored and which scenario the main job runs."""

from pathlib import Path

import dagster as dg
import polars as pl

from scheduler import DEFAULT_TOPOLOGY_PATH
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
    """What the main job runs: a real request trace, the service it stands for, a topology.

    The defaults are the embedded ones: the Azure 2023 conversation trace replayed through
    the simulator's default heterogeneous P/D cluster, placed on the shipped default topology.
    """

    service: str = "chat"
    trace_path: str = str(DEFAULT_TRACE_PATH)
    trace_format: str = "azure"
    topology_path: str = str(DEFAULT_TOPOLOGY_PATH)
    interval_s: float = 15.0
    #: Decode time-between-tokens SLO on p99; the paper's SLOs are not public, this is ours.
    tbt_slo_s: float = 0.1
    #: How often the policy decides; the signal study judges signals at the same timescale.
    control_interval_s: float = 60.0
