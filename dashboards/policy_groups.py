"""Which policy of the fleet backtest plays which part: the chosen one, the references (the
limit, the right-sized fixed deployment), the fixed deployment, the baselines it has to beat,
and the ablations that each take one mechanism away.

The fleet backtest's tables name each policy as ``policies/registry.py`` does. The report
groups policies by those names, not by row order, so it reads right for a run of any subset.
Every figure colours a policy the same way, so one legend entry means one policy on the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import cycle

import polars as pl
from plotly.colors import qualitative

CHOSEN = "heteroscale"
#: Next interval's load at pressure-tested capacity, instant start: the limit, not a policy.
ORACLE = "oracle"
#: The fixed deployment sized for the peak: what autoscaling saves against.
STATIC_PEAK = "static_peak"
#: The fixed deployment sized for the evaluation days' own peak, known only in hindsight: what
#: a right-sized static deployment costs. A reference, like the oracle, not a baseline.
STATIC_HINDSIGHT = "static_hindsight"
#: Policies that read the load they run on: references, not peers.
REFERENCES = (ORACLE, STATIC_HINDSIGHT)
#: Registry names of the ablations: the chosen policy with one mechanism switched off.
ABLATION_PREFIX = f"{CHOSEN}_without_"

#: Fixed colours of the policies every figure shows, so they read the same on each figure.
ANCHOR_COLOURS = {
    CHOSEN: "#d62728",
    ORACLE: "#111111",
    STATIC_PEAK: "#7f7f7f",
    STATIC_HINDSIGHT: "#bcbd22",
}


def is_ablation(policy: str) -> bool:
    return policy.startswith(ABLATION_PREFIX)


def mechanism(ablation: str) -> str:
    """The mechanism an ablation switches off, in words: ``heteroscale_without_soft_scale_in``
    gives ``soft scale in``."""
    return ablation.removeprefix(ABLATION_PREFIX).replace("_", " ")


def row(summary: pl.DataFrame, policy: str) -> dict | None:
    """The policy's row of ``fleet_summary``; None when the run left it out."""
    rows = summary.filter(pl.col("policy") == policy)
    return rows.row(0, named=True) if rows.height else None


def baselines(summary: pl.DataFrame) -> pl.DataFrame:
    """The rows of the peers the chosen policy competes with: neither itself, nor a
    reference (:data:`REFERENCES`, which know the load they run on), nor an ablation."""
    policy = pl.col("policy")
    return summary.filter(
        (policy != CHOSEN) & ~policy.is_in(REFERENCES) & ~policy.str.starts_with(ABLATION_PREFIX)
    )


def ablations(summary: pl.DataFrame) -> pl.DataFrame:
    return summary.filter(pl.col("policy").str.starts_with(ABLATION_PREFIX))


def best_baseline(summary: pl.DataFrame, attainment: float) -> dict | None:
    """The baseline with the fewest GPU-hours among those whose SLO attainment is at least
    ``attainment``: the cheapest way to the SLO without the chosen policy. None if none
    reaches it."""
    peers = baselines(summary).filter(pl.col("slo_attainment") >= attainment)
    return peers.sort("gpu_hours", "policy").row(0, named=True) if peers.height else None


def policy_colours(policies: Iterable[str]) -> dict[str, str]:
    """A colour per policy: the anchors' fixed ones, the others from Plotly's palettes in
    name order (pass every policy of the backtest so a policy keeps its colour across
    figures)."""
    others = sorted(set(policies) - set(ANCHOR_COLOURS))
    palette = [
        colour
        for colour in (*qualitative.Plotly, *qualitative.Dark24)
        if colour not in ANCHOR_COLOURS.values()
    ]
    return ANCHOR_COLOURS | dict(zip(others, cycle(palette), strict=False))
