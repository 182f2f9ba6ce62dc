"""Autoscaling policies and the loop that judges them (docs/policy.md).

Every policy is a :class:`Controller` (``observe(window) -> decision``) run by one loop,
:func:`run_controller`, on a plant: fast mode for multi-day fleets
(:class:`simulator.fluid_loop.FluidLoop`) or request level placed on a topology
(:class:`policies.request_plant.RequestPlant`). :class:`HeteroScale` is the paper's coordinated
policy; :mod:`policies.baselines` what peers scale on; :class:`Oracle` the limit. Curation
(Algorithm 1, :func:`curate`) sets their inputs on curation days; :func:`run_fleet_backtest`
scores them all on evaluation days (:func:`score`).
"""

from policies.controller import Controller, Decision, PoolView, Window, hold
from policies.curation import Curation, curate, pressure_test
from policies.fleet import FleetBacktest, FleetScenario, run_fleet_backtest, servegen_scenario
from policies.heteroscale import HeteroScale, HeteroScaleConfig
from policies.inputs import PolicyInputs, PoolCapacity
from policies.loop import ControlRun, run_controller
from policies.oracle import Oracle
from policies.scoring import score
from policies.slo import ServiceSLO

__all__ = [
    "ControlRun",
    "Controller",
    "Curation",
    "Decision",
    "FleetBacktest",
    "FleetScenario",
    "HeteroScale",
    "HeteroScaleConfig",
    "Oracle",
    "PolicyInputs",
    "PoolCapacity",
    "PoolView",
    "ServiceSLO",
    "Window",
    "curate",
    "hold",
    "pressure_test",
    "run_controller",
    "run_fleet_backtest",
    "score",
    "servegen_scenario",
]
