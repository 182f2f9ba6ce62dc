"""A small end-to-end set of tables: telemetry and its signal scores, a placement, and a real
fleet backtest (every policy and ablation, two evaluation days) with its mode agreement."""

import numpy as np
import polars as pl
import pytest

from policies.fleet import (
    backtest_tables,
    curation_tables,
    run_fleet_backtest,
    servegen_scenario,
)
from policies.modes import compare_modes
from policies.registry import select
from signals import RECOMMENDATION_SCHEMA, paired_series, run_study, score_signals
from tests.canonical_frames import instance_samples, service_load

INTERVALS = 24
SERVICE = "svc"
#: One candidate: curation then costs one closed-loop day instead of a sweep.
GRID = {"utilisation_target": (0.75,), "scale_in_cooldown_s": (600.0,), "scale_in_step": (0.1,)}
#: The fleet backtest's tables the report reads (the store holds each with a service column).
FLEET_TABLES = (
    "curated_policy",
    "curation_candidates",
    "pressure_sweep",
    "fleet_summary",
    "fleet_per_day",
    "fleet_timeline",
)


@pytest.fixture(scope="session")
def fleet():
    """Three days of ServeGen m-large at 5% (one curation day, two evaluation days) and a
    quarter hour of the second evaluation day in both modes; about 10 s."""
    scenario = servegen_scenario(days=3, curation_days=1, rate_scale=0.05)
    backtest = run_fleet_backtest(scenario, select(None, ablations=True), grid=GRID)
    tables = curation_tables(scenario, backtest.curation) | backtest_tables(backtest)
    modes = compare_modes(
        scenario,
        backtest.curation,
        select(["heteroscale", "static_peak"]),
        first_s=2 * 86_400 + 7 * 3600,
        span_s=900,
    )
    stored = {name: tables[name] for name in FLEET_TABLES} | {
        "mode_agreement": modes,
        "decisions": tables["scaling_decisions"],
    }
    return {name: table.with_columns(service=pl.lit(SERVICE)) for name, table in stored.items()}


@pytest.fixture(scope="session")
def telemetry():
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
            "service": [SERVICE] * 4,
            "role": ["prefill", "decode", "decode", "decode"],
            "action": ["scale_out", "scale_out", "scale_out", "scale_in"],
            "deployment_group": ["dg-0", "dg-0", "dg-1", "dg-0"],
            "node_id": ["n0", "n1", "n7", "n1"],
            "s2": ["s2-a", "s2-a", "s2-b", "s2-a"],
            "s1": ["s1-0", "s1-0", "s1-3", "s1-0"],
            "gpu_type": ["H20", "L20", "L20", "L20"],
            "gpus": [8, 8, 4, 8],
            "instances": [2, 3, 1, 2],
            "subgroup_priority": ["low", "low", "medium", "low"],
            "affinity_satisfied": [True, True, True, True],
        }
    )
    # Cycle 1 asked for three scale-ins of decode and could do two (the plan's last row).
    outcomes = pl.DataFrame(
        {
            "cycle": [0, 0, 1],
            "service": [SERVICE] * 3,
            "role": ["prefill", "decode", "decode"],
            "action": ["scale_out", "scale_out", "scale_in"],
            "requested_instances": [2, 5, 3],
            "placed_instances": [2, 4, 2],
            "shortfall_instances": [0, 1, 1],
        }
    )
    study, recommended = run_study(
        samples, offered, service=SERVICE, window_s=None, slo={"ttft_p99_s": 6.0, "tbt_p99_s": 0.1}
    )
    return {
        "instance_samples": samples,
        "service_load": offered,
        "signal_scores": score_signals(samples, offered),
        "signal_study": study,
        "signal_recommendation": pl.DataFrame(
            [recommended or {"service": SERVICE}], schema=RECOMMENDATION_SCHEMA
        ),
        "placement": placement,
        "placement_outcomes": outcomes,
        # The study's paired series (the study ran without a window).
        "signal_series": paired_series(samples, offered),
    }


@pytest.fixture(scope="session")
def tables(fleet, telemetry):
    """Every table ``write_report`` takes, by its keyword."""
    return fleet | telemetry
