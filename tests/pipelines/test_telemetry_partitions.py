"""Telemetry as Dagster day partitions: a day loads from the configured source into the store's
service x day partitions and reports its rows; a day the simulator's trace does not cover is
refused; and re-running a day replaces it."""

from datetime import timedelta

import dagster as dg
import polars as pl
import pytest

from pipelines.assets.telemetry import (
    INSTANCE_SAMPLES_KEY,
    SERVICE_LOAD_KEY,
    canonical_telemetry,
    instance_samples_have_no_gaps,
)
from pipelines.resources import ScenarioResource, StoreResource, TelemetrySourceResource
from telemetry.store import TelemetryStore
from tests.telemetry.ingest.frames import START, hourly_days_export, source_frames

DAYS = [(START + timedelta(days=k)).date().isoformat() for k in range(3)]


@pytest.fixture
def three_days(tmp_path):
    """A Parquet export of three days of one service's instance samples."""
    frames = [
        source_frames(intervals=6, seed=k, start=START + timedelta(days=k))[0] for k in (0, 1, 2)
    ]
    path = tmp_path / "export.parquet"
    pl.concat(frames).write_parquet(path)
    return path, [f.height for f in frames]


def materialise(
    tmp_path, day: str, sources: str, mapping: str = "", checked: bool = False
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [canonical_telemetry, *([instance_samples_have_no_gaps] if checked else [])],
        partition_key=day,
        resources={
            "store": StoreResource(db_path=str(tmp_path / "store.duckdb")),
            "scenario": ScenarioResource(),
            "source": TelemetrySourceResource(sources=sources, mapping=mapping),
        },
        raise_on_error=False,
    )


def stored_days(tmp_path) -> dict[str, int]:
    samples = TelemetryStore(tmp_path / "store.duckdb").read("instance_samples")
    counts = samples.group_by("day").len().sort("day")
    return {day.isoformat(): n for day, n in counts.rows()}


def test_a_day_partition_loads_that_day_of_the_source_and_reports_its_rows(tmp_path, three_days):
    path, rows = three_days
    result = materialise(tmp_path, DAYS[1], str(path))
    assert result.success
    assert stored_days(tmp_path) == {DAYS[1]: rows[1]}
    events = {e.asset_key: e for e in result.get_asset_materialization_events()}
    assert set(events) == {INSTANCE_SAMPLES_KEY, SERVICE_LOAD_KEY}  # no request outcomes
    samples = events[INSTANCE_SAMPLES_KEY]
    assert samples.partition == DAYS[1]
    metadata = samples.materialization.metadata
    assert metadata["dagster/row_count"] == dg.IntMetadataValue(rows[1])
    assert metadata["services"] == dg.TextMetadataValue("chat")


def test_rerunning_a_day_replaces_it_and_leaves_the_others(tmp_path, three_days):
    path, rows = three_days
    for day in (DAYS[0], DAYS[2], DAYS[0]):
        assert materialise(tmp_path, day, str(path)).success
    assert stored_days(tmp_path) == {DAYS[0]: rows[0], DAYS[2]: rows[2]}


def test_a_day_the_source_does_not_hold_fails_naming_it(tmp_path, three_days):
    path, _ = three_days
    result = materialise(tmp_path, "2025-03-09", str(path))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert f"{path}: holds no rows of 2025-03-09" in failure.description


def test_the_simulator_fills_only_the_day_its_trace_covers(tmp_path):
    result = materialise(tmp_path, "2024-01-02", "simulator")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "starts on 2024-01-01, not 2024-01-02" in failure.description
    assert not (tmp_path / "store.duckdb").exists()


def test_a_missing_day_between_loaded_ones_is_a_gap_the_check_names(tmp_path):
    path, mapping = hourly_days_export(tmp_path)
    first = materialise(tmp_path, DAYS[0], str(path), str(mapping), checked=True)
    assert [e.passed for e in first.get_asset_check_evaluations()] == [True]
    third = materialise(tmp_path, DAYS[2], str(path), str(mapping), checked=True)
    (gap,) = third.get_asset_check_evaluations()
    assert not gap.passed and not third.success  # blocking
    assert gap.metadata["instances_with_gaps"].value == 3
    assert (
        "chat/chat-decode-0: 24 intervals missing, the first after 2025-03-01 23:00:00"
        in gap.description
    )
