"""Seeded synthetic services and instance targets, for benchmarks and quality comparisons.

A fleet-scale benchmark needs hundreds of services whose needs differ the way the paper's do:
heterogeneous P/D (prefill and decode on different GPU types, §5.4.1), every affinity level
(§5.4.2), several P/D ratios (§5.4.4) and priorities. Nothing here is measured from a real
fleet; the mix is ours and documented in docs/scheduler.md.
"""

from __future__ import annotations

import math

import numpy as np

from scheduler.requirements import RoleRequirements, ServiceRequirements

#: Affinity levels drawn for services, and their weights: most P/D services need one S2.
AFFINITY_MIX = (("s2", 0.7), ("s1", 0.15), ("none", 0.15))
#: GPUs per instance drawn for a role.
INSTANCE_SIZES = (1, 2, 4, 8)
#: P/D ratios drawn (prefill per decode); 9/7 is the paper's best split for its Service A.
PD_RATIOS = (0.5, 1.0, 9 / 7, 2.0)


def generate_services(
    seed: int, count: int, *, gpu_types: tuple[str, ...] = ("H20", "L20")
) -> dict[str, ServiceRequirements]:
    """``count`` services named ``svc-00000``...: requirements drawn from a NumPy generator.

    Each role prefers a random GPU type and, half the time, accepts the others as fallbacks;
    sizes, ratio, affinity (weights of :data:`AFFINITY_MIX`) and priority (0-3) are drawn
    independently. The same arguments always give the same services.
    """
    rng = np.random.default_rng(seed)
    levels = [level for level, _ in AFFINITY_MIX]
    weights = [weight for _, weight in AFFINITY_MIX]
    services = {}
    for i in range(count):
        roles = []
        for _ in range(2):
            preferred = gpu_types[int(rng.integers(len(gpu_types)))]
            others = tuple(t for t in gpu_types if t != preferred)
            fallback = others if rng.random() < 0.5 else ()
            size = INSTANCE_SIZES[int(rng.integers(len(INSTANCE_SIZES)))]
            roles.append(RoleRequirements(preferred, fallback, size))
        services[f"svc-{i:05d}"] = ServiceRequirements(
            roles[0],
            roles[1],
            affinity=levels[int(rng.choice(len(levels), p=weights))],
            pd_ratio=PD_RATIOS[int(rng.integers(len(PD_RATIOS)))],
            priority=int(rng.integers(4)),
        )
    return services


def generate_targets(
    seed: int, services: dict[str, ServiceRequirements], *, max_decode: int = 8
) -> dict[str, tuple[int, int]]:
    """A (prefill, decode) target per service: 1..``max_decode`` decoders and the policy's
    split ``prefill = ceil(pd_ratio * decode)``."""
    rng = np.random.default_rng(seed)
    targets = {}
    for name, needs in services.items():
        decode = int(rng.integers(1, max_decode + 1))
        targets[name] = (math.ceil(needs.pd_ratio * decode - 1e-9), decode)
    return targets
