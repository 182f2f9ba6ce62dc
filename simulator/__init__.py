"""P/D disaggregated serving simulator: real request traces, a calibrated roofline GPU model, and
a discrete-event cluster that emits telemetry in the canonical schema.

The pipelines call :func:`simulate` with a request frame from :mod:`simulator.traces` (or
:mod:`simulator.servegen`) and a :class:`ClusterSpec`, by default :func:`default_cluster`.
Mechanisms, sources and measured accuracy: docs/simulator.md.
"""

from simulator.closed_loop import ClosedLoopSimulation, IntervalFrames, ScaleAction
from simulator.cluster import (
    ClusterSpec,
    ColocatedClusterSpec,
    EngineConfig,
    LifecycleSpec,
    PoolSpec,
    default_cluster,
)
from simulator.engine import SimulationResult, simulate
from simulator.fluid import FluidResult, simulate_fluid
from simulator.paths import AZURE_CONV_CSV as DEFAULT_TRACE_PATH
from simulator.servegen import load_servegen_windows, servegen_day, servegen_requests
from simulator.traces import Trace, TraceError, default_trace, load_azure, load_mooncake, thin
from simulator.workloads import TRACE_FORMATS, load_trace

__all__ = [
    "ClosedLoopSimulation",
    "IntervalFrames",
    "LifecycleSpec",
    "ScaleAction",
    "DEFAULT_TRACE_PATH",
    "TRACE_FORMATS",
    "ClusterSpec",
    "ColocatedClusterSpec",
    "EngineConfig",
    "FluidResult",
    "PoolSpec",
    "SimulationResult",
    "Trace",
    "TraceError",
    "default_cluster",
    "default_trace",
    "load_azure",
    "load_mooncake",
    "load_trace",
    "load_servegen_windows",
    "servegen_day",
    "servegen_requests",
    "simulate",
    "simulate_fluid",
    "thin",
]
