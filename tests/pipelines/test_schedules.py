"""The daily schedules and the freshness checks: the policy is refreshed once per batch of new
telemetry days, whichever way they arrived, and yesterday's missing telemetry is flagged."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipelines.assets.signals import SIGNAL_STUDY_KEY
from pipelines.assets.telemetry import (
    INSTANCE_SAMPLES_KEY,
    SERVICE_LOAD_KEY,
    TELEMETRY_FRESHNESS_CHECKS,
    canonical_telemetry,
)
from pipelines.definitions import defs
from pipelines.resources import ScenarioResource, StoreResource, TelemetrySourceResource
from pipelines.schedules import daily_policy_schedule, daily_telemetry_schedule
from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD
from telemetry.store import DB_ENV_VAR
from tests.canonical_frames import instance_samples, service_load


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def report(instance: dg.DagsterInstance, key: dg.AssetKey, day: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day))


@pytest.fixture
def store(tmp_path) -> StoreResource:
    """A store whose offered load names two services."""
    store = StoreResource(db_path=str(tmp_path / "telemetry.duckdb"))
    for service in ("code", "chat"):
        store.write(SERVICE_LOAD, service_load([100.0] * 4, service=service))
    return store


def tick(instance: dg.DagsterInstance, store: StoreResource):
    with dg.build_schedule_context(instance=instance, resources={"store": store}) as context:
        return daily_policy_schedule(context)


def test_the_policy_is_refreshed_once_per_batch_of_new_telemetry_days(instance, store):
    assert isinstance(tick(instance, store), dg.SkipReason)  # nothing loaded yet
    report(instance, INSTANCE_SAMPLES_KEY, "2025-03-02")
    report(instance, SERVICE_LOAD_KEY, "2025-03-01")
    first = tick(instance, store)
    # One run per service, on the offered load the store recorded for it.
    assert [r.tags["heteroscale/service"] for r in first] == ["chat", "code"]
    for request in first:
        assert request.tags["heteroscale/new_days"] == "2025-03-01..2025-03-02 (2)"
        config = request.run_config["resources"]["scenario"]["config"]
        assert config == {"service": request.tags["heteroscale/service"], "fleet_from_store": True}
    # The same telemetry asks for the same runs (deduplicated by their keys) until the study ran.
    assert [r.run_key for r in tick(instance, store)] == [r.run_key for r in first]
    report(instance, SIGNAL_STUDY_KEY)
    assert isinstance(tick(instance, store), dg.SkipReason)
    report(instance, INSTANCE_SAMPLES_KEY, "2025-03-03")
    later = tick(instance, store)
    assert later[0].tags["heteroscale/new_days"] == "2025-03-03..2025-03-03 (1)"
    assert not {r.run_key for r in later} & {r.run_key for r in first}


def test_new_telemetry_without_offered_load_asks_for_no_policy_run(instance, tmp_path):
    empty = StoreResource(db_path=str(tmp_path / "empty.duckdb"))
    empty.write(INSTANCE_SAMPLES, instance_samples(role="decode", instances=1, intervals=4))
    report(instance, INSTANCE_SAMPLES_KEY, "2025-03-02")
    skipped = tick(instance, empty)
    assert isinstance(skipped, dg.SkipReason)
    assert "records no offered load (service_load)" in skipped.skip_message


def test_a_scheduled_run_curates_on_the_services_recorded_load(monkeypatch, tmp_path):
    """The schedule's run config reaches the job's scenario: what the run's steps would get."""
    monkeypatch.setenv(DB_ENV_VAR, str(tmp_path / "telemetry.duckdb"))
    job = defs.resolve_job_def(daily_policy_schedule.job_name)
    config = {"resources": {"scenario": {"config": {"service": "code", "fleet_from_store": True}}}}
    resolved = dg.validate_run_config(job, config)
    assert resolved["resources"]["scenario"]["config"]["service"] == "code"
    assert resolved["resources"]["scenario"]["config"]["fleet_from_store"] is True


def test_the_telemetry_schedule_loads_yesterday():
    when = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    schedule = defs.resolve_schedule_def(daily_telemetry_schedule.name)
    (request,) = schedule.evaluate_tick(
        dg.build_schedule_context(scheduled_execution_time=when)
    ).run_requests
    assert request.partition_key == "2026-03-04"
    assert schedule.cron_schedule == "0 1 * * *"
    assert schedule.job_name == "telemetry_job"


def freshness(instance: dg.DagsterInstance) -> dict[dg.AssetKey, bool]:
    """Evaluate the freshness checks now, as their sensor would: a run of the checks alone."""
    checks = dg.define_asset_job(
        "freshness", selection=dg.AssetSelection.checks(*TELEMETRY_FRESHNESS_CHECKS)
    )
    job = dg.Definitions(
        assets=[canonical_telemetry],
        asset_checks=TELEMETRY_FRESHNESS_CHECKS,
        jobs=[checks],
        resources={
            "store": StoreResource(db_path="unused.duckdb"),
            "scenario": ScenarioResource(),
            "source": TelemetrySourceResource(),
        },
    ).resolve_job_def("freshness")
    result = job.execute_in_process(instance=instance)
    return {e.asset_key: e.passed for e in result.get_asset_check_evaluations()}


def test_freshness_flags_telemetry_whose_newest_day_is_missing(instance):
    """The day due is yesterday from the 05:00 UTC deadline on, the day before until then:
    telemetry holding it is fresh, telemetry a day behind it is not, at any hour."""
    now = datetime.now(UTC)
    due = (now - timedelta(days=1 if now.hour >= 5 else 2)).date()
    report(instance, INSTANCE_SAMPLES_KEY, due.isoformat())
    report(instance, SERVICE_LOAD_KEY, (due - timedelta(days=1)).isoformat())
    assert freshness(instance) == {INSTANCE_SAMPLES_KEY: True, SERVICE_LOAD_KEY: False}
