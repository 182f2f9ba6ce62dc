"""The drift check reads the study's recommendation and band from the store and warns, naming
the day, when the recommended signal stops tracking load."""

import dagster as dg
import polars as pl

from pipelines.assets.signals import recommended_signal_tracks_load
from pipelines.resources import ScenarioResource, StoreResource
from signals import RECOMMENDATION_SCHEMA
from telemetry.store import TableWrite, TelemetryStore
from tests.signals.test_drift import reference_row, three_days


def run_check(tmp_path, third_day_signal) -> dg.AssetCheckResult:
    samples, offered = three_days(third_day_signal)
    reference = reference_row(samples, offered)
    recommendation = pl.DataFrame(
        [{"service": "svc", "signal": "decode_tps", "role": "decode", "gpu_type": None}],
        schema=RECOMMENDATION_SCHEMA,
    )
    db = tmp_path / "store.duckdb"
    TelemetryStore(db).write_many(
        [
            TableWrite("instance_samples", samples, ("service",)),
            TableWrite("service_load", offered, ("service",)),
            TableWrite("signal_study", pl.DataFrame([reference]), ("service",)),
            TableWrite("signal_recommendation", recommendation, ("service",)),
        ]
    )
    return recommended_signal_tracks_load(
        scenario=ScenarioResource(service="svc", signal_window_s=600.0),
        store=StoreResource(db_path=str(db)),
    )


def test_a_decoupled_day_fails_the_check_with_a_warning_naming_it(tmp_path):
    result = run_check(tmp_path, lambda load, rng: rng.uniform(50.0, 250.0, load.size))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "2025-03-03: correlation" in result.description
    assert result.metadata["days_weakened"].value == 1


def test_days_that_keep_the_relation_pass(tmp_path):
    result = run_check(tmp_path, lambda load, rng: load / 4 + rng.normal(0.0, 5.0, load.size))
    assert result.passed, result.description
    assert result.description == "decode decode_tps: tracks load on all 3 days"
