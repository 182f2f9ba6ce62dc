"""The ratio walk: which role to add (or remove) next, and a dry-run fill on a domain's profile.

A fill adds one instance at a time, a role the group lacks first, otherwise the role that
leaves it closest to its ``pd_ratio``, each on the best bucket of the role's preference order.
It reads bucket sizes only (:mod:`scheduler.free_index`), so domains with equal profiles need
one fill between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.free_index import BucketKey, Profile
from scheduler.requirements import ROLES, ServiceRequirements


@dataclass(frozen=True)
class Fill:
    """A dry-run fill: the roles to add in order, whether they strand the rest of the request,
    and the GPUs they take."""

    roles: tuple[str, ...]
    strands: bool
    gpus: int


def dry_run_fill(
    counts: dict[str, int],
    profile: Profile,
    left: dict[str, int],
    needs: ServiceRequirements,
    orders: dict[str, tuple[BucketKey, ...]],
) -> Fill:
    """Dry run of growing a group by the ratio walk, on the domain's bucket sizes only.

    Every prefix that ends with the group balanced is a candidate, and the longest one
    whose remainder could still form a balanced group of its own is preferred over a longer
    one whose remainder could not (say two decoders and no prefill), which then only an
    existing group could absorb.
    """
    counts, left = dict(counts), dict(left)
    sizes = dict(profile)
    roles: list[str] = []
    gpus = [0]
    longest = longest_unstranded = 0
    while True:
        for role in roles_by_ratio(counts, left, needs, +1):
            bucket = next((k for k in orders[role] if sizes.get(k)), None)
            if bucket is not None:
                break
        else:
            break
        gpu_type, priority, free = bucket
        size = needs.role(role).gpus_per_instance
        sizes[bucket] -= 1
        after = (gpu_type, priority, free - size)
        sizes[after] = sizes.get(after, 0) + 1
        counts[role] += 1
        left[role] -= 1
        roles.append(role)
        gpus.append(gpus[-1] + size)
        if needs.is_balanced(counts["prefill"], counts["decode"]):
            longest = len(roles)
            if needs.is_balanced(left["prefill"], left["decode"]):
                longest_unstranded = longest
    keep = longest_unstranded or longest
    return Fill(tuple(roles[:keep]), not longest_unstranded, gpus[keep])


def capacity_bound(
    profile: Profile,
    left: dict[str, int],
    needs: ServiceRequirements,
    orders: dict[str, tuple[BucketKey, ...]],
) -> int:
    """At most how many instances a fill of this profile could add: an upper bound, cheap.

    Each node counts with the most instances of any role still wanted that fits it.
    """
    allowed = {}
    for role in ROLES:
        if left[role] > 0:
            size = needs.role(role).gpus_per_instance
            for gpu_type, priority, _ in orders[role]:
                allowed[(gpu_type, priority)] = min(allowed.get((gpu_type, priority), size), size)
    bound = 0
    for (gpu_type, priority, free), count in profile:
        size = allowed.get((gpu_type, priority))
        if size is not None:
            bound += count * (free // size)
    return min(bound, sum(left.values()))


def roles_by_ratio(
    counts: dict[str, int], left: dict[str, int], needs: ServiceRequirements, direction: int
) -> list[str]:
    """Roles still to move, in the order to try them.

    Nearest to the ratio after the move first, prefill on ties. When growing, a role the group
    does not have yet comes before all else: a group needs both, and a walk that filled a small
    domain with one role first could find no room left for the other.
    """

    def order(role: str) -> tuple[bool, float, int]:
        moved = {**counts, role: counts[role] + direction}
        lacking = direction > 0 and counts[role] == 0
        error = abs(needs.ratio_error(moved["prefill"], moved["decode"]))
        return (not lacking, error, ROLES.index(role))

    return sorted((r for r in ROLES if left[r] > 0), key=order)
