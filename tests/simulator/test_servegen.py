"""ServeGen windows load and regenerate arrivals that keep each window's count."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from simulator import TraceError, default_trace, load_servegen_windows, servegen_requests
from simulator.paths import SERVEGEN_3CLIENTS_14DAYS_CSV_GZ, SERVEGEN_RATES_CSV_GZ
from simulator.servegen import (
    WINDOW_S,
    fill_collection_gaps,
    load_servegen_rates,
    rate_requests,
)
from simulator.traces import SYNTHETIC_EPOCH


def test_loads_the_shipped_slice():
    windows = load_servegen_windows()
    assert windows.height == 3 * 144
    assert sorted(windows["client_id"].unique().to_list()) == [20, 57, 140]
    assert set(windows["iat_dist"].drop_nulls().unique().to_list()) <= {"Gamma", "Weibull"}
    assert windows.filter(pl.col("rate_rps") > 0)["iat_dist"].null_count() == 0


def test_the_shipped_14_days_hold_every_window_and_contain_the_slice_clients():
    rates = load_servegen_rates()
    assert rates.height == 14 * 144
    assert rates["window_start_s"].to_list() == [k * WINDOW_S for k in range(14 * 144)]
    clients = load_servegen_windows(SERVEGEN_3CLIENTS_14DAYS_CSV_GZ)
    assert clients.height == 3 * 14 * 144
    day1 = clients.filter(pl.col("window_start_s") < 86_400)
    assert day1.equals(load_servegen_windows())
    # The aggregate sums all clients, so in every window it is at least the three clients'
    # rate, and counts at least as many active clients.
    three = (
        clients.group_by("window_start_s")
        .agg(pl.col("rate_rps").sum(), (pl.col("rate_rps") > 0).sum().alias("active"))
        .join(rates, on="window_start_s", suffix="_all")
    )
    assert three.height == 14 * 144
    assert (three["rate_rps_all"] >= three["rate_rps"] - 1e-9).all()
    assert (three["active_clients"] >= three["active"]).all()


@pytest.mark.parametrize(("service", "gaps"), [("m-large", 0), ("m-mid", 84), ("m-small", 37)])
def test_collection_gaps_carry_the_previous_windows_rate(service, gaps):
    rates = load_servegen_rates(SERVEGEN_RATES_CSV_GZ[service])
    assert rates.height == 14 * 144
    filled, count = fill_collection_gaps(rates)
    assert count == gaps
    assert filled["window_start_s"].equals(rates["window_start_s"])
    was_gap = (rates["active_clients"] == 0).to_numpy()
    kept, carried = filled["rate_rps"].to_numpy(), rates["rate_rps"].to_numpy()
    assert np.array_equal(kept[~was_gap], carried[~was_gap])
    # The gaps are exactly the windows that read 0; filled, each reads the last window before
    # its run of gaps, which was positive.
    assert np.array_equal(was_gap, carried == 0)
    for k in np.flatnonzero(was_gap):
        before = np.flatnonzero(~was_gap[:k])[-1]
        assert kept[k] == carried[before] > 0


def test_a_gap_with_nothing_before_it_stays_idle():
    rates = pl.DataFrame(
        {
            "window_start_s": [0.0, 600.0, 1200.0],
            "rate_rps": [0.0, 5.0, 0.0],
            "active_clients": [0, 2, 0],
        }
    )
    filled, count = fill_collection_gaps(rates)
    assert count == 2 and filled["rate_rps"].to_list() == [0.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("window_start_s,rate_rps\n0,1\n", r"missing column\(s\)"),
        ("window_start_s,rate_rps,active_clients\n0,-1,3\n", r":2: column 'rate_rps': negative"),
        (
            "window_start_s,rate_rps,active_clients\n0,1,3\n600,2,3\n600,2,3\n",
            r":3: column 'window_start_s': repeated window",
        ),
    ],
)
def test_rejects_bad_rates_naming_file_and_line(tmp_path, body, message):
    path = tmp_path / "rates.csv"
    path.write_text(body)
    with pytest.raises(TraceError, match=message):
        load_servegen_rates(path)


def test_arrivals_keep_each_window_count_and_stay_inside_it(azure):
    windows = load_servegen_windows().filter(pl.col("window_start_s").is_between(3600, 7199))
    trace = servegen_requests(windows, azure.requests, seed=7)
    requests = trace.requests
    assert trace.start == SYNTHETIC_EPOCH + timedelta(seconds=3600)
    expected = windows.select((pl.col("rate_rps") * WINDOW_S).round().sum()).item()
    assert requests.height == expected
    per_window = np.bincount((requests["arrival_s"].to_numpy() // WINDOW_S).astype(int))
    expected_per_window = (
        windows.group_by("window_start_s")
        .agg((pl.col("rate_rps") * WINDOW_S).round().sum())
        .sort("window_start_s")["rate_rps"]
        .to_numpy()
    )
    np.testing.assert_array_equal(per_window, expected_per_window)
    assert requests["input_tokens"].is_in(azure.requests["input_tokens"].implode()).all()
    assert requests.equals(servegen_requests(windows, azure.requests, seed=7).requests)


@pytest.mark.parametrize("client", [57, 140])
def test_each_window_keeps_its_recorded_burstiness(azure, client):
    # Client 57 is near-periodic (CV ~0.2), client 140 bursty (CV ~3): both must survive.
    windows = load_servegen_windows().filter(
        pl.col("client_id") == client, pl.col("window_start_s") < 6 * 3600
    )
    arrival_s = servegen_requests(windows, azure.requests, seed=0).requests["arrival_s"]
    arrival_s = arrival_s.to_numpy()
    recorded, generated = [], []
    for start_s, cv, rate in windows.select("window_start_s", "iat_cv", "rate_rps").iter_rows():
        inside = arrival_s[(arrival_s >= start_s) & (arrival_s < start_s + WINDOW_S)]
        if rate * WINDOW_S < 50:
            continue
        gaps = np.diff(inside)
        recorded.append(cv)
        generated.append(gaps.std() / gaps.mean())
    log_ratio = np.abs(np.log(np.asarray(generated) / np.asarray(recorded)))
    assert len(recorded) >= 30
    assert np.median(log_ratio) < 0.25


HEADER = "client_id,window_start_s,rate_rps,iat_cv,iat_dist,dist_param1,dist_param2\n"
GOOD = "1,0,0.5,1.2,Gamma,0.7,2.8\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("client_id,window_start_s,rate_rps\n1,0,0.5\n", r"missing column\(s\)"),
        (
            HEADER + GOOD + "1,600,fast,1.2,Gamma,0.7,2.8\n",
            r":3: column 'rate_rps': cannot parse 'fast'",
        ),
        (HEADER + GOOD + "1,600,0.5,1.2,,0,0\n", r":3: column 'iat_dist': an active window"),
        (HEADER + "1,0,-0.5,0,,0,0\n", r":2: column 'rate_rps': negative rate"),
        (HEADER + "1,0,0.5,1.2,Weibull,0,1\n", r":2: column 'dist_param1'"),
    ],
)
def test_rejects_bad_windows_naming_file_and_line(tmp_path, body, message):
    path = tmp_path / "windows.csv"
    path.write_text(body)
    with pytest.raises(TraceError, match=message) as error:
        load_servegen_windows(path)
    assert str(path) in str(error.value)


def test_rate_requests_are_poisson_at_the_windows_rate_over_the_span():
    rates = pl.DataFrame({"window_start_s": [0.0, 600.0], "rate_rps": [10.0, 40.0]})
    lengths = default_trace().requests
    trace = rate_requests(rates, lengths, first_s=300.0, span_s=600.0, rate_scale=0.5, seed=1)
    arrival = trace.requests["arrival_s"].to_numpy()
    assert arrival.min() >= 0 and arrival.max() < 600 and (np.diff(arrival) >= 0).all()
    first, second = (arrival < 300).sum(), (arrival >= 300).sum()
    # expected 1,500 and 6,000; Poisson standard deviations ~39 and ~77
    assert abs(first - 1500) < 200 and abs(second - 6000) < 400
    assert trace.start == SYNTHETIC_EPOCH + timedelta(seconds=300)
    assert set(trace.requests["input_tokens"].unique()) <= set(lengths["input_tokens"].unique())
