"""resample: rates and gauges averaged by duration over coarser windows."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from signals import resample

START = datetime(2023, 11, 16, 18, 0, tzinfo=UTC)


def series(values, latencies, interval_s=15.0):
    return pl.DataFrame(
        {
            "ts": [START + timedelta(seconds=interval_s * k) for k in range(len(values))],
            "service": "svc",
            "role": "decode",
            "interval_s": interval_s,
            "decode_tps": values,
            "tbt_p99_s": latencies,
        }
    )


def test_windows_hold_duration_weighted_means_and_covered_seconds():
    frame = pl.concat(
        [
            series([100.0, 200.0, 300.0, 400.0], [0.1, None, 0.3, None]),
            series([1000.0], [0.5], interval_s=60.0).with_columns(
                ts=pl.lit(START + timedelta(minutes=1))
            ),
        ]
    )
    out = resample(frame, 60.0, ("service", "role"))
    assert out.columns == frame.columns
    assert out.select("ts", "interval_s", "decode_tps", "tbt_p99_s").rows() == [
        (START, 60.0, 250.0, pytest.approx(0.2)),
        (START + timedelta(minutes=1), 60.0, 1000.0, 0.5),
    ]


def test_a_window_without_any_value_stays_null():
    out = resample(series([1.0, 2.0], [None, None]), 60.0, ("service", "role"))
    assert out["tbt_p99_s"].to_list() == [None]


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window_s"):
        resample(series([1.0], [0.1]), 0.0, ("service", "role"))
