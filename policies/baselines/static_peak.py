"""Static peak provisioning: size every pool once for the busiest interval of the history.

What a team without an autoscaler runs. It never acts, so it never breaches from lag, and it
pays for the peak all day: the baseline the paper's utilisation gain is measured against.
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL, Decision, Window
from policies.inputs import PolicyInputs
from policies.sizing import size_role


class StaticPeak:
    """Holds each pool at the count the history's peak needs at the SLO."""

    name = "static_peak"

    def __init__(self, inputs: PolicyInputs) -> None:
        history = inputs.history
        dt = history.interval_s
        prompt_tps = float(history.prompt_tokens.max()) / dt
        decode_tps = float(history.decode_tokens.max()) / dt
        self.targets = {
            **size_role(inputs, PREFILL, prompt_tps),
            **size_role(inputs, DECODE, decode_tps),
        }
        self.reason = (
            f"static: history peak {prompt_tps:,.0f} prompt tok/s, {decode_tps:,.0f} decode tok/s"
        )

    def observe(self, window: Window) -> Decision:
        return Decision(self.targets, self.reason)
