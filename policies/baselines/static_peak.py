"""Static peak provisioning: size every pool once for the busiest interval of the history.

What a team without an autoscaler runs. It never acts, so it never breaches from lag, and it
pays for the peak all day: the baseline the paper's utilisation gain is measured against.
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL, Decision, Window
from policies.inputs import PolicyInputs
from policies.sizing import size_role
from simulator.fluid_load import FluidLoad


class StaticPeak:
    """Holds each pool at the count the peak of ``sized_on`` (default: the history) needs at
    the SLO. Sized on the load it will run on, it is the right-sized fixed deployment, known
    only in hindsight (``static_hindsight`` in :mod:`policies.registry`)."""

    name = "static_peak"

    def __init__(self, inputs: PolicyInputs, sized_on: FluidLoad | None = None) -> None:
        load = inputs.history if sized_on is None else sized_on
        dt = load.interval_s
        prompt_tps = float(load.prompt_tokens.max()) / dt
        decode_tps = float(load.decode_tokens.max()) / dt
        self.targets = {
            **size_role(inputs, PREFILL, prompt_tps),
            **size_role(inputs, DECODE, decode_tps),
        }
        sized = "history" if sized_on is None else "run's own"
        self.reason = (
            f"static: {sized} peak {prompt_tps:,.0f} prompt tok/s, {decode_tps:,.0f} decode tok/s"
        )

    def observe(self, window: Window) -> Decision:
        return Decision(self.targets, self.reason)
