"""A small end-to-end set of tables: telemetry, its signal scores, decisions and a placement."""

import numpy as np
import polars as pl
import pytest

from policies import RUN_SUMMARY_SCHEMA, CoordinatedPolicyConfig, replay_decisions
from signals import score_signals
from tests.canonical_frames import instance_samples, service_load

INTERVALS = 24


@pytest.fixture(scope="session")
def tables():
    rng = np.random.default_rng(3)
    load = np.concatenate([np.linspace(200.0, 2000.0, 12), np.linspace(2000.0, 300.0, 12)])
    decode = instance_samples(
        role="decode",
        instances=4,
        intervals=INTERVALS,
        decode_tps=list(load / 4),
        gpu_util_ratio=list(0.88 + rng.normal(0.0, 0.01, INTERVALS)),
        tbt_p99_s=list(0.03 + 0.05 * (load / 2000.0) ** 4),  # flat, then a cliff
    )
    prefill = instance_samples(
        role="prefill",
        instances=4,
        intervals=INTERVALS,
        prefill_tps_cache_missed=list(2 * load),
        gpu_util_ratio=list(load / 2200.0),
        ttft_p99_s=list(0.3 + rng.random(INTERVALS)),
    )
    samples = pl.concat([decode, prefill])
    offered = service_load(list(load))
    placement = pl.DataFrame(
        {
            "cycle": [0, 0, 0, 1],
            "service": ["svc"] * 4,
            "role": ["prefill", "decode", "decode", "decode"],
            "action": ["scale_out", "scale_out", "scale_out", "scale_in"],
            "deployment_group": ["dg-0", "dg-0", "dg-1", "dg-0"],
            "node_id": ["n0", "n1", "n7", "n1"],
            "s2": ["s2-a", "s2-a", "s2-b", "s2-a"],
            "s1": ["s1-0", "s1-0", "s1-3", "s1-0"],
            "gpu_type": ["H20", "L20", "L20", "L20"],
            "gpus": [8, 8, 4, 8],
            "instances": [2, 3, 1, 2],
            "subgroup_priority": [0, 0, 1, 0],
            "affinity_satisfied": [True, True, True, True],
        }
    )
    decisions = replay_decisions(
        samples,
        CoordinatedPolicyConfig(100.0, control_interval_s=60.0, scale_in_cooldown_s=0.0),
        service="svc",
    )
    backtest_summary = pl.DataFrame(
        {
            "run": ["fixed", "coordinated"],
            "gpu_hours_prefill": [4.0, 3.0],
            "gpu_hours_decode": [4.0, 3.0],
            "gpu_util_prefill": [0.4, 0.5],
            "gpu_util_decode": [0.9, 0.9],
            "gpu_util": [0.65, 0.7],
            "ttft_p99_s": [1.5, 1.75],
            "tpot_p99_s": [0.03, 0.032],
            "requests": [100, 100],
            "service": ["svc", "svc"],
        },
        schema={**RUN_SUMMARY_SCHEMA, "service": pl.String()},
    )
    return {
        "instance_samples": samples,
        "service_load": offered,
        "signal_scores": score_signals(samples, offered),
        "decisions": decisions,
        "placement": placement,
        "backtest_decisions": decisions.with_columns(
            shortfall_instances=pl.lit(0), kv_bandwidth_factor=pl.lit(None, pl.Float64)
        ),
        "backtest_summary": backtest_summary,
    }
