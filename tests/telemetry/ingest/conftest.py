"""Fixtures of the ingestion tests: a store per test and the loader's fixed clock."""

import pytest

from telemetry.store import TelemetryStore


@pytest.fixture
def store(tmp_path):
    return TelemetryStore(tmp_path / "store.duckdb")
