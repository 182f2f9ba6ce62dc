"""Hand-built topologies and requirements for the scheduler tests, small enough to read."""

from __future__ import annotations

from scheduler import (
    LogicalCluster,
    Node,
    PhysicalCluster,
    RoleRequirements,
    S1MiniPod,
    S2BigPod,
    ServiceRequirements,
    Topology,
    Vdc,
)


def build_tree(layout: dict[str, dict[str, list[str]]], gpus_per_node: int = 8) -> Topology:
    """A one-VDC tree from ``{s2: {s1: [GPU type per node]}}``; nodes are ``<s1>-n<k>``."""
    big_pods = tuple(
        S2BigPod(
            s2,
            tuple(
                S1MiniPod(
                    s1, tuple(Node(f"{s1}-n{k}", t, gpus_per_node) for k, t in enumerate(types))
                )
                for s1, types in mini_pods.items()
            ),
        )
        for s2, mini_pods in layout.items()
    )
    return Topology((Vdc("vdc", (PhysicalCluster("pc", (LogicalCluster("lc", big_pods),)),)),))


def service(
    prefill: str = "H20",
    decode: str = "H20",
    *,
    gpus: int = 8,
    prefill_fallback: tuple[str, ...] = (),
    decode_fallback: tuple[str, ...] = (),
    **kwargs,
) -> ServiceRequirements:
    """Requirements with the same instance size for both roles; other fields by keyword."""
    return ServiceRequirements(
        RoleRequirements(prefill, prefill_fallback, gpus),
        RoleRequirements(decode, decode_fallback, gpus),
        **kwargs,
    )
