"""Reading the recorded deployment back: its P/D ratio and each role's hardware."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from policies import deployed_pd_ratio, deployed_requirements

START = datetime(2023, 11, 16, tzinfo=UTC)

#: (role, instance, GPU type, GPUs per instance); d2 reports only once.
INSTANCES = [
    ("prefill", "p0", "L20", 4),
    ("prefill", "p1", "L20", 4),
    ("prefill", "p2", "L40S", 2),
    ("decode", "d0", "H20", 4),
    ("decode", "d1", "H20", 4),
]


def samples() -> pl.DataFrame:
    rows = [
        {
            "ts": START + timedelta(seconds=15 * k),
            "role": r,
            "instance_id": i,
            "gpu_type": g,
            "gpus_per_instance": n,
        }
        for k in range(3)
        for r, i, g, n in INSTANCES
    ]
    rows.append(
        {
            "ts": START,
            "role": "decode",
            "instance_id": "d2",
            "gpu_type": "H20",
            "gpus_per_instance": 4,
        }
    )
    return pl.DataFrame(rows).with_columns(service=pl.lit("chat"))


def test_deployed_pd_ratio_counts_distinct_instances_per_role():
    assert deployed_pd_ratio(samples(), service="chat") == pytest.approx(3 / 3)
    assert deployed_pd_ratio(samples().filter(pl.col("instance_id") != "p2"), service="chat") == (
        pytest.approx(2 / 3)
    )


def test_deployed_requirements_prefer_the_type_most_instances_ran_on():
    needs = deployed_requirements(samples(), service="chat")
    assert needs.prefill.gpu_types == ("L20", "L40S")
    assert needs.prefill.gpus_per_instance == 4
    assert needs.decode.gpu_types == ("H20",)
    assert needs.affinity == "s2"
    assert needs.pd_ratio == pytest.approx(1.0)


def test_a_run_without_both_roles_is_refused():
    with pytest.raises(ValueError, match="prefill"):
        deployed_pd_ratio(samples().filter(pl.col("role") == "decode"), service="chat")
    with pytest.raises(ValueError, match="decode"):
        deployed_requirements(samples(), service="other")
