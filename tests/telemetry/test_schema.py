"""conform() turns a frame into the canonical table or says precisely what is wrong."""

from datetime import UTC, datetime

import polars as pl
import pytest

from telemetry.schema import INSTANCE_SAMPLES_SCHEMA, SchemaError, conform


def one_sample(**overrides) -> pl.DataFrame:
    row = {c: 0.5 for c in INSTANCE_SAMPLES_SCHEMA}
    row.update(
        ts=datetime(2023, 11, 16, 18, tzinfo=UTC),
        interval_s=15.0,
        service="chat",
        role="decode",
        instance_id="decode-0",
        gpu_type="H20",
        gpus_per_instance=4,
        ready=True,
        ttft_p50_s=None,
    )
    row.update(overrides)
    return pl.DataFrame([row])


def test_conform_orders_and_types_columns():
    frame = one_sample().select(list(reversed(INSTANCE_SAMPLES_SCHEMA))).with_columns(extra=1)
    out = conform(frame, "instance_samples")
    assert out.schema == pl.Schema(INSTANCE_SAMPLES_SCHEMA)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "router"}, "unknown roles"),
        ({"gpu_util_ratio": 87.0}, "gpu_util_ratio outside"),
        ({"decode_tps": -1.0}, "decode_tps are negative"),
        ({"ttft_p99_s": float("nan")}, "ttft_p99_s are negative, NaN"),
        ({"queue_depth": float("inf")}, "queue_depth are negative, NaN or infinite"),
        ({"interval_s": 0.0}, "interval_s must be > 0"),
        ({"instance_id": None}, "null values"),
        ({"gpus_per_instance": "four"}, "wrong type"),
    ],
)
def test_conform_names_the_problem(overrides, message):
    with pytest.raises(SchemaError, match=message):
        conform(one_sample(**overrides), "instance_samples")


def test_conform_names_missing_columns():
    with pytest.raises(SchemaError, match="kv_usage_ratio"):
        conform(one_sample().drop("kv_usage_ratio"), "instance_samples")


def test_conform_refuses_two_samples_of_one_instance_in_one_interval():
    twice = pl.concat([one_sample(), one_sample(decode_tps=9.0)])
    with pytest.raises(SchemaError, match="share a key.*instance_id=decode-0"):
        conform(twice, "instance_samples")


def test_a_signal_the_source_does_not_measure_is_null_not_zero():
    out = conform(one_sample(sm_active_ratio=None), "instance_samples")
    assert out["sm_active_ratio"].to_list() == [None]
