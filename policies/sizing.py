"""Instances a role needs for a load: one home for turning tokens/s into instance counts.

Heterogeneous pools of a role are weighed by their pressure-tested per-instance capacity (a
GPU type's capacity weight): the role's load is placed on its pools in order (the preferred
GPU type first, as the cluster lists them) up to each pool's bound, then on the next.
"""

from __future__ import annotations

import math

from policies.controller import PoolKey
from policies.inputs import PolicyInputs


def ceil_count(value: float) -> int:
    """``ceil`` that ignores binary noise (``25 * 0.28 = 7.000000000000001`` is 7)."""
    return math.ceil(round(value, 9))


def size_role(
    inputs: PolicyInputs, role: str, tps: float, *, headroom: float = 1.0
) -> dict[PoolKey, int]:
    """Instances per pool of ``role`` to serve ``tps`` tokens/s at the SLO.

    Parameters
    ----------
    inputs : PolicyInputs
    role : str
    tps : float
        The role's load: prompt tokens/s for prefill, generated tokens/s for decode.
    headroom : float
        Multiplies the load (1.2 provisions 20% spare).

    Returns
    -------
    dict
        Every pool of the role, at least its ``min_instances`` and at most its
        ``max_instances``; load beyond every pool's bound is left unserved.
    """
    remaining = max(tps, 0.0) * headroom
    counts = {}
    for pool in inputs.of_role(role):
        count = min(
            max(ceil_count(remaining / pool.tps_at_slo), pool.min_instances), pool.max_instances
        )
        counts[pool.key] = count
        remaining = max(0.0, remaining - count * pool.tps_at_slo)
    return counts


def clamp(inputs: PolicyInputs, key: PoolKey, count: int) -> int:
    """``count`` within the pool's bounds."""
    pool = inputs.pool(key)
    return min(max(count, pool.min_instances), pool.max_instances)
