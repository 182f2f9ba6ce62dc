"""Periodic scaling: a fixed schedule of instance counts per period of the day.

HeteroScale (arXiv 2508.19559, §5.3.1) describes periodic scaling as the policy run where
traffic follows the clock: each period of the day has a static target instance count per
role, and so a static P/D ratio, set from past traffic. This is that schedule fitted to the
curation history: it reads no metric and no observed load, only the time of day, so it
cannot react to a day that differs from the history's days.
"""

from __future__ import annotations

import numpy as np

from policies.controller import DECODE, PREFILL, Decision, PoolKey, Window
from policies.inputs import PolicyInputs
from policies.scoring import DAY_S
from policies.sizing import size_role


class Periodic:
    """Per slot of the day, the counts that slot's highest historical load needs.

    Parameters
    ----------
    inputs : PolicyInputs
        Its history must cover every slot of the day at least once.
    period_s : float
        Length of a slot; must divide a day.
    headroom : float
        Multiplies each slot's peak load before sizing (1.2 provisions 20% spare).

    Attributes
    ----------
    schedule : list of (dict, str)
        Per slot, from UTC midnight: the instances per pool, and the reason logged with them.
    """

    name = "periodic"

    def __init__(self, inputs: PolicyInputs, *, period_s: float = 3600.0, headroom: float = 1.0):
        slots = DAY_S / period_s
        if period_s <= 0 or slots != int(slots):
            raise ValueError(f"period_s must divide a day, got {period_s}")
        self.period_s = period_s
        history = inputs.history
        dt = history.interval_s
        # Each history interval belongs to the slot its start falls in (UTC time of day).
        starts = history.start.timestamp() + np.arange(history.count) * dt
        slot = (starts % DAY_S // period_s).astype(np.int64)
        prompt_tps = np.full(int(slots), -np.inf)
        decode_tps = np.full(int(slots), -np.inf)
        np.maximum.at(prompt_tps, slot, history.prompt_tokens / dt)
        np.maximum.at(decode_tps, slot, history.decode_tokens / dt)
        if np.isinf(prompt_tps).any():
            raise ValueError("periodic: the history does not cover every slot of the day")
        self.schedule: list[tuple[dict[PoolKey, int], str]] = []
        for i, (prompt, decode) in enumerate(zip(prompt_tps, decode_tps, strict=True)):
            targets = {
                **size_role(inputs, PREFILL, prompt, headroom=headroom),
                **size_role(inputs, DECODE, decode, headroom=headroom),
            }
            reason = (
                f"periodic: slot {_clock(i * period_s)}-{_clock((i + 1) * period_s)} UTC, "
                f"history peak {prompt:,.0f} prompt tok/s, {decode:,.0f} decode tok/s, "
                f"headroom {headroom:g}"
            )
            self.schedule.append((targets, reason))

    def observe(self, window: Window) -> Decision:
        targets, reason = self.schedule[int(window.now.timestamp() % DAY_S // self.period_s)]
        return Decision(targets, reason)


def _clock(seconds: float) -> str:
    """``HH:MM`` of a time of day in seconds (24:00 for the end of the day)."""
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
