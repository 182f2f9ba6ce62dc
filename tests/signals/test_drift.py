"""signals.drift: the recommended signal re-checked against the study's bands, day by day."""

import numpy as np
import polars as pl
import pytest

from signals.drift import daily_drift, drift_reasons
from signals.study import study_table
from tests.canonical_frames import instance_samples, service_load

INTERVAL_S = 600.0
PER_DAY = 144
INSTANCES = 4


def three_days(third_day_signal):
    """Offered output tokens/s with a diurnal swing over three days; a decode pool whose token
    throughput is proportional to it on days 1-2 and ``third_day_signal(load, rng)`` on day 3."""
    rng = np.random.default_rng(5)
    t = np.arange(3 * PER_DAY)
    load = 600 + 400 * np.sin(2 * np.pi * t / PER_DAY) + rng.normal(0.0, 20.0, t.size)
    signal = load / INSTANCES + rng.normal(0.0, 5.0, t.size)
    signal[2 * PER_DAY :] = third_day_signal(load[2 * PER_DAY :], rng)
    samples = instance_samples(
        role="decode",
        instances=INSTANCES,
        intervals=t.size,
        interval_s=INTERVAL_S,
        decode_tps=list(signal),
    )
    return samples, service_load(list(load), interval_s=INTERVAL_S)


def reference_row(samples, offered):
    """The study's row for decode TPS, from the first day only (the curated relation)."""
    first = pl.col("ts") < pl.col("ts").min() + pl.duration(days=1)
    table = study_table(
        samples.filter(first), offered.filter(first), candidates={("decode", "decode_tps")}
    )
    assert table.height == 1
    return table.row(0, named=True)


def test_a_day_that_keeps_the_relation_passes_and_one_that_decouples_is_flagged():
    samples, offered = three_days(lambda load, rng: rng.uniform(50.0, 250.0, load.size))
    drift = daily_drift(samples, offered, reference_row(samples, offered), window_s=None)
    assert drift["weakened"].to_list() == [False, False, True]
    assert drift["reasons"][0].to_list() == [] and drift["reasons"][1].to_list() == []
    assert any("correlation" in reason for reason in drift["reasons"][2])


def test_a_changed_slope_is_flagged_even_when_the_correlation_holds():
    """The pool doubled on day 3: per instance, the same load reads half as high."""
    samples, offered = three_days(lambda load, rng: load / 8 + rng.normal(0.0, 2.5, load.size))
    drift = daily_drift(samples, offered, reference_row(samples, offered), window_s=None)
    last = drift.row(2, named=True)
    assert last["weakened"] and last["pearson"] > 0.95
    assert [reason for reason in last["reasons"] if "slope" in reason]
    assert not drift["weakened"][1]


def band(value, half_width):
    return {"": value, "_low": value - half_width, "_high": value + half_width}


def row(pearson, slope, half_width):
    return {
        **{f"pearson{k}": v for k, v in band(pearson, half_width).items()},
        **{f"slope{k}": v for k, v in band(slope, half_width).items()},
    }


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (row(0.85, 1.0, 0.05), []),
        (row(0.76, 1.09, 0.05), []),  # outside the reference's band, inside the day's own
        (row(0.5, 1.0, 0.05), ["correlation"]),
        (row(0.99, 1.0, 0.05), []),  # a stronger correlation is no weakening
        (row(0.9, 1.5, 0.05), ["slope"]),
        (row(0.9, 0.5, 0.05), ["slope"]),
        (row(float("nan"), float("nan"), 0.05), ["correlation", "slope"]),
    ],
)
def test_reasons_name_what_moved_beyond_both_bands(day, expected):
    reasons = drift_reasons(row(0.85, 1.0, 0.05), day)
    assert [next(w for w in ("correlation", "slope") if w in r) for r in reasons] == expected
