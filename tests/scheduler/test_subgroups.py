"""RDMA subgroup classification and priorities (paper §5.4.3)."""

from scheduler import Priority, SubgroupKind, classify_subgroups
from tests.scheduler.trees import build_tree

TREE = build_tree(
    {
        "uniform": {"u0": ["H20", "H20"], "u1": ["H20", "H20"]},
        "split": {"s0": ["L20", "L20"], "s1": ["H20", "H20"]},
        "mixed": {"m0": ["L20", "H20"], "m1": ["H20", "H20"], "m2": ["L20", "L20"]},
    }
)


def test_each_kind_gets_the_papers_priority():
    assert SubgroupKind.S2_HOMOGENEOUS.priority is Priority.LOW
    assert SubgroupKind.S2_HETEROGENEOUS.priority is Priority.MEDIUM
    assert SubgroupKind.S1_HETEROGENEOUS.priority is Priority.HIGH


def test_hand_built_tree_is_classified_per_switch():
    found = {(s.id, s.kind, s.s1s, s.gpu_types) for s in classify_subgroups(TREE).subgroups}
    assert found == {
        ("s2:uniform", SubgroupKind.S2_HOMOGENEOUS, ("u0", "u1"), ("H20",)),
        ("s2:split", SubgroupKind.S2_HETEROGENEOUS, ("s0", "s1"), ("H20", "L20")),
        # A mixed S1 is its own high subgroup; the rest of its S2 still mixes types: medium.
        ("s1:m0", SubgroupKind.S1_HETEROGENEOUS, ("m0",), ("H20", "L20")),
        ("s2:mixed", SubgroupKind.S2_HETEROGENEOUS, ("m1", "m2"), ("H20", "L20")),
    }


def test_every_node_has_exactly_its_subgroups_priority():
    subgroups = classify_subgroups(TREE)
    assert set(subgroups.node_subgroup) == {n.id for n in TREE.nodes}
    priorities = {n.id: subgroups.priority_of(n.id).label for n in TREE.nodes}
    assert priorities == {
        "u0-n0": "low",
        "u0-n1": "low",
        "u1-n0": "low",
        "u1-n1": "low",
        "s0-n0": "medium",
        "s0-n1": "medium",
        "s1-n0": "medium",
        "s1-n1": "medium",
        "m0-n0": "high",
        "m0-n1": "high",
        "m1-n0": "medium",
        "m1-n1": "medium",
        "m2-n0": "medium",
        "m2-n1": "medium",
    }


def test_an_s2_of_mixed_s1s_only_has_no_medium_subgroup():
    tree = build_tree({"x": {"x0": ["L20", "H20"], "x1": ["H20", "L20"]}})
    kinds = [s.kind for s in classify_subgroups(tree).subgroups]
    assert kinds == [SubgroupKind.S1_HETEROGENEOUS, SubgroupKind.S1_HETEROGENEOUS]
