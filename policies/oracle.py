"""The oracle: the fewest instances per interval that keep the SLO, knowing the load ahead
and starting instances at once. No policy can do better on the same plant; every policy's
GPU-hours are reported against it.
"""

from __future__ import annotations

import numpy as np

from policies.controller import DECODE, PREFILL, Decision, PoolKey, Window
from policies.inputs import PolicyInputs
from policies.sizing import size_role
from simulator.cluster import LifecycleSpec
from simulator.fluid_load import FluidLoad

#: The oracle's instances serve from the interval after they are asked for.
INSTANT = LifecycleSpec(default_startup_s=0.0)


class Oracle:
    """Sizes every pool for the next interval's offered load at its pressure-tested capacity.

    Parameters
    ----------
    inputs : PolicyInputs
        The pools' capacities at the SLO.
    load : FluidLoad
        The load it will be run on (perfect foresight; run it with :data:`INSTANT`).

    Notes
    -----
    Decode tokens are emitted over a request's residence, so an interval's decode work mixes
    its own arrivals with the previous interval's: decode is sized for the larger of the two.
    """

    name = "oracle"

    def __init__(self, inputs: PolicyInputs, load: FluidLoad) -> None:
        dt = load.interval_s
        prompt_tps = load.prompt_tokens / dt
        decode_tps = load.decode_tokens / dt
        decode_tps = np.maximum(decode_tps, np.concatenate(([decode_tps[0]], decode_tps[:-1])))
        self.interval_s = dt
        self.plan: list[dict[PoolKey, int]] = [
            {**size_role(inputs, PREFILL, p), **size_role(inputs, DECODE, d)}
            for p, d in zip(prompt_tps.tolist(), decode_tps.tolist(), strict=True)
        ]

    def observe(self, window: Window) -> Decision:
        upcoming = min(round(window.t_s / self.interval_s), len(self.plan) - 1)
        return Decision(self.plan[upcoming], "oracle: the next interval's load at capacity")
