"""Loading, validating and generating topologies."""

import json

import pytest
import yaml

from scheduler import (
    DEFAULT_TOPOLOGY_PATH,
    SMALL_TOPOLOGY_PATH,
    SubgroupKind,
    TopologyError,
    classify_subgroups,
    generate_topology,
    load_topology,
)


def shipped_document() -> dict:
    return yaml.safe_load(SMALL_TOPOLOGY_PATH.read_text())


def write(tmp_path, document, name="topology.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document))
    return path


def test_shipped_topology_loads_with_its_documented_shape():
    topology = load_topology(SMALL_TOPOLOGY_PATH)
    assert [b.id for b in topology.big_pods] == ["s2-a", "s2-b"]
    assert len(topology.nodes) == 24
    assert topology.total_gpus == 192
    assert {n.gpu_type for n in topology.nodes} == {"H20", "L20"}
    location = topology.location("b2-n3")
    assert (location.vdc, location.s2, location.s1) == ("vdc-0", "s2-b", "s1-b2")


def test_shipped_topology_has_every_subgroup_kind():
    kinds = {s.kind for s in classify_subgroups(load_topology(SMALL_TOPOLOGY_PATH)).subgroups}
    assert kinds == set(SubgroupKind)


def test_json_and_yaml_give_the_same_tree(tmp_path):
    from_json = load_topology(write(tmp_path, shipped_document(), "topology.json"))
    assert from_json == load_topology(SMALL_TOPOLOGY_PATH)


def node_path(document: dict) -> tuple[dict, str]:
    """The first node of the document and its path as error messages spell it."""
    s1 = document["vdcs"][0]["physical_clusters"][0]["logical_clusters"][0]["s2_big_pods"][0]
    path = (
        "vdcs[0].physical_clusters[0].logical_clusters[0].s2_big_pods[0].s1_mini_pods[0].nodes[0]"
    )
    return s1["s1_mini_pods"][0]["nodes"][0], path


def test_negative_gpu_count_is_rejected_with_its_path(tmp_path):
    document = shipped_document()
    node, path = node_path(document)
    node["gpu_count"] = -8
    with pytest.raises(TopologyError) as error:
        load_topology(write(tmp_path, document))
    assert str(error.value).endswith(
        f"topology.yaml: {path}: gpu_count must be a positive integer, got -8"
    )


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    document = shipped_document()
    node, path = node_path(document)
    node["gpus"] = 8
    with pytest.raises(TopologyError) as error:
        load_topology(write(tmp_path, document))
    assert f"{path}: unknown key(s) ['gpus']" in str(error.value)


def test_missing_key_is_rejected(tmp_path):
    document = shipped_document()
    node, path = node_path(document)
    del node["gpu_type"]
    with pytest.raises(TopologyError) as error:
        load_topology(write(tmp_path, document))
    assert f"{path}: missing key(s) ['gpu_type']" in str(error.value)


def test_duplicate_node_id_names_both_places(tmp_path):
    document = shipped_document()
    node, path = node_path(document)
    node["id"] = "b2-n3"
    with pytest.raises(TopologyError) as error:
        load_topology(write(tmp_path, document))
    message = str(error.value)
    assert "node id 'b2-n3' is used at" in message
    assert path in message
    assert "s2_big_pods[1].s1_mini_pods[2].nodes[3]" in message


def test_wrong_structure_and_syntax_are_rejected(tmp_path):
    with pytest.raises(TopologyError, match=r"document: expected a mapping, got list"):
        load_topology(write(tmp_path, [1, 2]))
    with pytest.raises(TopologyError, match=r"vdcs: expected a list, got dict"):
        load_topology(write(tmp_path, {"vdcs": {"id": "x"}}))
    broken = tmp_path / "broken.yaml"
    broken.write_text("vdcs: [\n")
    with pytest.raises(TopologyError, match=r"broken\.yaml: not valid YAML"):
        load_topology(broken)
    with pytest.raises(TopologyError, match=r"unknown topology format '\.txt'"):
        load_topology(tmp_path / "topology.txt")


def test_unquoted_numeric_id_is_rejected(tmp_path):
    document = shipped_document()
    node, path = node_path(document)
    node["id"] = 7
    with pytest.raises(TopologyError, match=r"id must be a non-empty string, got 7"):
        load_topology(write(tmp_path, document))


def test_generator_is_seeded_and_shaped():
    first = generate_topology(3, s2_count=5, s1_per_s2=2, nodes_per_s1=3, gpus_per_node=4)
    assert first == generate_topology(3, s2_count=5, s1_per_s2=2, nodes_per_s1=3, gpus_per_node=4)
    assert len(first.big_pods) == 5
    assert len(first.nodes) == 30
    assert first.total_gpus == 120


def test_generator_draws_every_subgroup_kind_over_a_few_s2s():
    kinds = {s.kind for s in classify_subgroups(generate_topology(0, s2_count=12)).subgroups}
    assert kinds == set(SubgroupKind)


def test_generator_with_one_gpu_type_is_homogeneous():
    subgroups = classify_subgroups(generate_topology(1, gpu_types=("H20",))).subgroups
    assert {s.kind for s in subgroups} == {SubgroupKind.S2_HOMOGENEOUS}


def test_default_topology_has_every_subgroup_kind():
    kinds = {s.kind for s in classify_subgroups(load_topology(DEFAULT_TOPOLOGY_PATH)).subgroups}
    assert len(kinds) == 3
