"""Every policy the backtest compares, by the name the CLI, the store and the report use.

A builder takes the curation (inputs, chosen configuration) and the load the policy will run on;
only the references read that load: the oracle (the limit) and ``static_hindsight`` (the fixed
deployment right-sized for it), which no team could run. The ablations switch one
HeteroScale mechanism off each, to show that it matters.
"""

from __future__ import annotations

from dataclasses import replace

from policies.baselines.forecast_planner import ForecastPlanner
from policies.baselines.hpa_gpu_util import HpaGpuUtil
from policies.baselines.independent_tps import IndependentTps
from policies.baselines.latency_steps import LatencySteps
from policies.baselines.periodic import Periodic
from policies.baselines.saturation import Saturation
from policies.baselines.static_peak import StaticPeak
from policies.fleet import Builder
from policies.heteroscale import HeteroScale
from policies.oracle import Oracle
from simulator.cluster import default_cluster


def _deployed_ratio() -> float:
    """The embedded deployment's P:D (15 prefill : 3 decode), chosen by hand for one trace."""
    cluster = default_cluster()
    return sum(p.count for p in cluster.prefill_pools) / sum(p.count for p in cluster.decode_pools)


#: The policies of every backtest, HeteroScale first.
POLICIES: dict[str, Builder] = {
    "heteroscale": lambda c, load: HeteroScale(c.inputs, c.config),
    "oracle": lambda c, load: Oracle(c.inputs, load),
    "static_peak": lambda c, load: StaticPeak(c.inputs),
    # A reference like the oracle: the fixed deployment right-sized for the load it runs on.
    "static_hindsight": lambda c, load: StaticPeak(c.inputs, sized_on=load),
    "hpa_gpu_util": lambda c, load: HpaGpuUtil(c.inputs),
    "independent_tps": lambda c, load: IndependentTps(
        c.inputs, utilisation_target=c.config.utilisation_target
    ),
    "latency_steps": lambda c, load: LatencySteps(c.inputs),
    "saturation": lambda c, load: Saturation(c.inputs),
    "forecast_planner": lambda c, load: ForecastPlanner(c.inputs),
    "periodic": lambda c, load: Periodic(c.inputs),
}

#: HeteroScale with one mechanism taken away each.
ABLATIONS: dict[str, Builder] = {
    "heteroscale_without_latency_feedback": lambda c, load: HeteroScale(
        c.inputs, c.config, latency_feedback=False
    ),
    "heteroscale_without_soft_scale_in": lambda c, load: HeteroScale(
        c.inputs, c.config, soft_scale_in=False
    ),
    "heteroscale_without_pressure_tested_ratio": lambda c, load: HeteroScale(
        replace(c.inputs, pd_ratio=_deployed_ratio()), c.config
    ),
}


def select(names: list[str] | None, *, ablations: bool = False) -> dict[str, Builder]:
    """The builders of ``names`` (all policies when None), plus the ablations if asked.

    Raises
    ------
    ValueError
        On a name that is no policy, naming the known ones.
    """
    known = POLICIES | ABLATIONS
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ValueError(f"unknown policies {unknown}; known: {', '.join(known)}")
    chosen = {name: POLICIES[name] for name in POLICIES if names is None or name in names}
    chosen |= {name: ABLATIONS[name] for name in ABLATIONS if names and name in names}
    return chosen | (ABLATIONS if ablations else {})
