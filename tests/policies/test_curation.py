"""Algorithm 1 on the fast-mode plant: pressure tests, the split sweep, the config sweep, and
the fleet backtest built on them."""

from dataclasses import replace

import numpy as np
import pytest

from policies.baselines.static_peak import StaticPeak
from policies.curation import BUDGET_SHARE, pressure_test
from policies.fleet import bootstrap_mean_ci, run_fleet_backtest, servegen_scenario
from policies.heteroscale import HeteroScale
from policies.oracle import Oracle
from policies.slo import ServiceSLO
from simulator import PoolSpec
from simulator.fluid_loop import FluidLoop

GRID = {
    "utilisation_target": (0.6, 0.7, 0.8),
    "scale_in_cooldown_s": (600.0,),
    "scale_in_step": (0.1,),
}
BUILDERS = {
    "heteroscale": lambda c, load: HeteroScale(c.inputs, c.config),
    "oracle": lambda c, load: Oracle(c.inputs, load),
    "static_peak": lambda c, load: StaticPeak(c.inputs),
}


@pytest.fixture(scope="module")
def scenario():
    return servegen_scenario(days=2, curation_days=1, rate_scale=0.05)


@pytest.fixture(scope="module")
def pressure(scenario):
    return pressure_test(scenario.curation, scenario.cluster, scenario.slo)


def test_decode_capacity_is_where_tbt_p99_reaches_the_slo(scenario, pressure):
    decode = pressure.pools[1]
    loop = FluidLoop(scenario.curation, scenario.cluster)
    table = loop._pools[1].table(1)
    tbt = dict(zip(table.names, table.at(decode.tps_at_slo), strict=True))["tbt_p99_s"]
    above = dict(zip(table.names, table.at(decode.tps_at_slo * 1.03), strict=True))["tbt_p99_s"]
    assert tbt <= scenario.slo.tbt_p99_s < above


def test_the_split_sweep_is_unimodal_and_its_optimum_balances_the_pools(scenario, pressure):
    per_instance = (
        pressure.sweep["decode_tps_within_slo"]
        / (pressure.sweep["prefill"] + pressure.sweep["decode"])
    ).to_numpy()
    best = int(per_instance.argmax())
    assert 0 < best < per_instance.size - 1  # an interior optimum (the paper's Fig. 4)
    # monotone on each side of it, to the ramp's resolution (0.5% of its top per interval)
    tolerance = -0.02 * per_instance.max()
    assert np.all(np.diff(per_instance[: best + 1]) >= tolerance)
    assert np.all(np.diff(per_instance[best:]) <= -tolerance)
    mix = scenario.curation.mix
    prefill, decode = pressure.pools[0].tps_at_slo, pressure.pools[1].tps_at_slo
    balanced = decode * mix.prompt_tokens / mix.decode_tokens / prefill
    assert pressure.pd_ratio == pytest.approx(balanced, rel=0.1)


@pytest.fixture(scope="module")
def backtest(scenario):
    return run_fleet_backtest(scenario, BUILDERS, grid=GRID)


def test_processes_give_the_same_curation_and_backtest(scenario, backtest):
    """The sweep's candidates and the policies over two processes: the same choice, scores
    and decisions as in this process."""
    spread = run_fleet_backtest(scenario, BUILDERS, grid=GRID, workers=2)
    assert spread.curation.config == backtest.curation.config
    assert spread.curation.candidates.equals(backtest.curation.candidates)
    assert spread.summary.equals(backtest.summary)
    assert spread.decisions.equals(backtest.decisions)


def test_curation_chooses_a_feasible_candidate_by_fewest_gpu_hours(backtest):
    candidates = backtest.curation.candidates
    assert candidates.height == 3
    assert backtest.curation.met_objective
    chosen = candidates.filter(
        candidates["utilisation_target"] == backtest.curation.config.utilisation_target
    )
    # a share of a 99% target's error budget on every curation day
    feasible = candidates.filter(
        candidates["worst_day_slo_attainment"] >= 1 - BUDGET_SHARE * (1 - 0.99)
    )
    assert feasible.height < candidates.height  # the reserve excluded a candidate
    assert chosen["gpu_hours"].item() == feasible["gpu_hours"].min()


def test_curation_never_sees_the_evaluation_days(scenario, backtest):
    doubled = replace(
        scenario,
        load=replace(
            scenario.load,
            requests=np.where(
                np.arange(scenario.load.count) >= scenario.curation_intervals,
                2 * scenario.load.requests,
                scenario.load.requests,
            ),
        ),
    )
    again = run_fleet_backtest(doubled, {"oracle": BUILDERS["oracle"]}, grid=GRID)
    assert again.curation.config == backtest.curation.config
    assert again.curation.candidates.equals(backtest.curation.candidates)


def test_heteroscale_holds_the_slo_with_fewer_gpu_hours_than_static_peak(backtest):
    rows = {row["policy"]: row for row in backtest.summary.iter_rows(named=True)}
    assert rows["heteroscale"]["slo_attainment"] >= 0.99
    assert rows["heteroscale"]["gpu_hours"] < rows["static_peak"]["gpu_hours"]
    assert rows["heteroscale"]["avg_gpu_util"] > rows["static_peak"]["avg_gpu_util"]
    assert all(rows["oracle"]["gpu_hours"] <= row["gpu_hours"] for row in rows.values())
    assert backtest.per_day["day"].unique().to_list() == [1]


def test_bootstrap_interval_brackets_the_mean():
    low, high = bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0])
    assert low < 2.5 < high
    assert bootstrap_mean_ci([5.0]) == (5.0, 5.0)


def test_an_slo_without_room_is_refused():
    with pytest.raises(ValueError):
        ServiceSLO(attainment=1.5)


def test_each_hardware_pairing_gets_the_ratio_its_capacities_imply(scenario):
    mixed = replace(
        scenario.cluster,
        decode_pools=(*scenario.cluster.decode_pools, PoolSpec("decode", "H100-SXM", 8, 2)),
    )
    pressure = pressure_test(scenario.curation, mixed, scenario.slo)
    ratios = {row[2]: row[4] for row in pressure.pairing_ratios().iter_rows()}
    h20, h100 = pressure.pools[1].tps_at_slo, pressure.pools[2].tps_at_slo
    assert h100 > h20  # an 8 x H100 instance out-decodes a 4 x H20 one
    assert ratios["H20"] == pytest.approx(pressure.pd_ratio)
    assert ratios["H100-SXM"] == pytest.approx(pressure.pd_ratio * h100 / h20)
