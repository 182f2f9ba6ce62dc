"""The offered load a store recorded, as fast mode's input: one interval per row on a gap-free
grid, a missed interval carrying the previous load, and a length mix scaled to recorded means."""

import numpy as np
import polars as pl
import pytest

from simulator.fluid_load import LengthMix, load_from_service_load, scaled_lengths
from simulator.traces import default_trace
from tests.canonical_frames import START, service_load


def test_each_row_is_an_interval_of_arrivals_prompt_and_decode_tokens():
    recorded = service_load([100.0, 200.0, 300.0], input_tps=[400.0, 500.0, 600.0])
    load = load_from_service_load(recorded, default_trace().requests)
    assert load.start == START and load.interval_s == 15.0 and load.count == 3
    assert np.allclose(load.requests, [15.0, 30.0, 45.0])  # 1, 2, 3 requests/s
    assert np.allclose(load.prompt_tokens, [6000.0, 7500.0, 9000.0])
    # Output tokens less the first of each request, which prefill produces.
    assert np.allclose(load.decode_tokens, [1500.0 - 15.0, 3000.0 - 30.0, 4500.0 - 45.0])
    assert load.mix == LengthMix.of(default_trace().requests)


def test_a_missing_interval_or_a_null_carries_the_previous_load():
    recorded = service_load([100.0, 200.0, 300.0, 400.0])
    holed = recorded.filter(pl.col("output_tps") != 200.0).with_columns(
        pl.when(pl.col("output_tps") == 400.0)
        .then(None)
        .otherwise("output_tps")
        .alias("output_tps")
    )
    load = load_from_service_load(holed, default_trace().requests)
    assert load.count == 4
    assert np.allclose(load.requests, [15.0, 15.0, 45.0, 60.0])
    assert np.allclose(load.decode_tokens / 15.0 + load.requests / 15.0, [100, 100, 300, 300])


def test_mixed_interval_lengths_are_refused():
    mixed = pl.concat(
        [
            service_load([1.0]),
            service_load([1.0], interval_s=60.0).with_columns(pl.col("ts").dt.offset_by("15s")),
        ]
    )
    with pytest.raises(ValueError, match="mixes intervals"):
        load_from_service_load(mixed, default_trace().requests)


def test_scaled_lengths_keep_the_shape_at_the_new_means():
    reference = default_trace().requests
    scaled = scaled_lengths(reference, 3000.0, 100.0)
    assert scaled["input_tokens"].mean() == pytest.approx(3000.0, rel=1e-3)
    assert scaled["output_tokens"].mean() == pytest.approx(100.0, rel=1e-2)
    assert scaled["output_tokens"].min() >= 1
    ratio = scaled["input_tokens"].quantile(0.99) / scaled["input_tokens"].mean()
    reference_ratio = reference["input_tokens"].quantile(0.99) / reference["input_tokens"].mean()
    assert ratio == pytest.approx(reference_ratio, rel=1e-2)
