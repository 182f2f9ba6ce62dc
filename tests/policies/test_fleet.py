"""The fleet workloads. ServeGen's services, each scaled to the default fleet's mean rate. A
store's recorded offered load: split into curation and evaluation halves (by day when it spans
days), its length mix from recorded requests or, with only means recorded, the reference mix
scaled to them; and refused, in words, when it cannot be."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from policies.fleet import DEFAULT_RATE_SCALE, MIN_PART_S, servegen_scenario, store_scenario
from simulator.fluid_load import LengthMix
from telemetry.store import TelemetryStore
from tests.canonical_frames import START, service_load
from tests.simulated_store import azure_hour_store


@pytest.mark.parametrize("service", ["m-mid", "m-small"])
def test_every_servegen_service_runs_at_the_default_fleets_mean_rate(service):
    default = servegen_scenario()
    other = servegen_scenario(servegen_service=service)
    assert default.source.startswith(f"ServeGen m-large, 14 real days x {DEFAULT_RATE_SCALE} ")
    assert other.load.count == default.load.count == 14 * 5760
    assert other.load.requests.mean() == pytest.approx(default.load.requests.mean(), rel=1e-9)
    assert "collection-gap windows" in other.source
    # Another service's days, not the default's shape rescaled.
    assert np.corrcoef(other.load.requests, default.load.requests)[0, 1] < 0.95


def test_an_unknown_servegen_service_is_refused():
    with pytest.raises(ValueError, match="one of m-large, m-mid, m-small"):
        servegen_scenario(servegen_service="m-huge")


def store_of(tmp_path, *loads: pl.DataFrame) -> TelemetryStore:
    store = TelemetryStore(tmp_path / "store.duckdb")
    for load in loads:
        store.write("service_load", load)
    return store


def test_a_simulated_store_gives_its_load_and_its_requests_lengths(tmp_path):
    store = TelemetryStore(azure_hour_store(tmp_path / "azure.duckdb"))
    scenario = store_scenario(store)
    recorded = store.read("service_load").sort("ts")
    assert scenario.service == "chat"
    assert scenario.load.count == recorded.height == 235
    assert np.allclose(scenario.load.requests, recorded["request_rate_rps"].to_numpy() * 15.0)
    assert scenario.curation_intervals == 235 // 2
    assert scenario.load.mix == LengthMix.of(store.read("request_outcomes"))
    assert str(store.path) in scenario.source
    assert "lengths of its 19,366 recorded requests" in scenario.source
    assert "15 prefill x 4 L20, 3 decode x 4 H20" in scenario.source
    # Request level: Poisson at the recorded rates, on the recording's clock.
    first_s = scenario.curation_intervals * 15.0
    trace = scenario.requests(first_s, 600.0)
    assert trace.start == scenario.evaluation.start
    expected = scenario.load.requests[scenario.curation_intervals :][:40].sum()
    assert abs(trace.requests.height - expected) < 4 * np.sqrt(expected)


def test_with_only_means_recorded_the_reference_mix_is_scaled_to_them(tmp_path):
    intervals = round(2 * MIN_PART_S / 15.0)
    store = store_of(tmp_path, service_load([300.0] * intervals, input_tps=[6000.0] * intervals))
    scenario = store_scenario(store, service="svc")
    # 3 requests/s bringing 6,000 prompt and 300 output tokens/s: 2,000 and 100 per request.
    assert scenario.load.mix.prompt_tokens == pytest.approx(2000.0, rel=1e-3)
    assert scenario.load.mix.decode_tokens == pytest.approx(99.0, rel=1e-2)
    assert (
        "Azure 2023 conversation lengths scaled to its mean prompt of 2,000 and output of 100"
        in (scenario.source)
    )


def test_two_days_or_more_split_at_a_whole_day(tmp_path):
    per_day = round(86_400 / 600.0)  # 10-minute intervals keep the store small
    load = service_load([100.0] * (3 * per_day + 10), interval_s=600.0)
    scenario = store_scenario(store_of(tmp_path, load))
    assert scenario.curation_intervals == per_day
    assert scenario.evaluation.start == START + timedelta(days=1)
    assert "days 1-1 curation" in scenario.source
    assert scenario.control_interval_s == 600.0


def test_a_store_without_offered_load_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"holds no offered load \(service_load\)"):
        store_scenario(TelemetryStore(tmp_path / "empty.duckdb"))


def test_a_span_too_short_to_split_is_refused(tmp_path):
    intervals = round(2 * MIN_PART_S / 15.0) - 2
    with pytest.raises(ValueError, match="too short to split"):
        store_scenario(store_of(tmp_path, service_load([100.0] * intervals)))


def test_several_services_need_one_named(tmp_path):
    store = store_of(tmp_path, service_load([1.0], service="a"), service_load([1.0], service="b"))
    with pytest.raises(ValueError, match=r"name one service with --service: .* \['a', 'b'\]"):
        store_scenario(store)
