"""Read a topology document (YAML or JSON) into a :class:`~scheduler.topology.Topology`.

The format mirrors the tree, one list per level, and nothing else is accepted, so a typo in a
key is an error instead of a silently missing pod::

    vdcs:
      - id: vdc-0
        physical_clusters:
          - id: pc-0
            logical_clusters:
              - id: lc-0
                s2_big_pods:
                  - id: s2-a
                    s1_mini_pods:
                      - id: s1-a0
                        nodes:
                          - {id: a0-n0, gpu_type: H20, gpu_count: 8}

Every error names the file and the item's path in the document, e.g.
``small.yaml: vdcs[0]...s1_mini_pods[2].nodes[1]: gpu_count must be a positive integer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from scheduler.topology import (
    DuplicateIdError,
    LogicalCluster,
    Node,
    PhysicalCluster,
    S1MiniPod,
    S2BigPod,
    Topology,
    TopologyError,
    Vdc,
)

_TOPOLOGIES_DIR = Path(__file__).resolve().parent.parent / "data" / "topologies"
#: The topology the main job places the default service on (sized for the default cluster).
DEFAULT_TOPOLOGY_PATH = _TOPOLOGIES_DIR / "default.yaml"
#: The fleet the default multi-day workload runs on: sixteen L20/H20 S2 big-pods, 2,048 GPUs.
FLEET_TOPOLOGY_PATH = _TOPOLOGIES_DIR / "fleet.yaml"
#: A small example topology with every RDMA subgroup kind, for docs and tests.
SMALL_TOPOLOGY_PATH = _TOPOLOGIES_DIR / "small.yaml"

#: The container levels from the root down: (level name for ids, class, key of its children).
_LEVELS = (
    ("vdc", Vdc, "physical_clusters"),
    ("physical_cluster", PhysicalCluster, "logical_clusters"),
    ("logical_cluster", LogicalCluster, "s2_big_pods"),
    ("s2", S2BigPod, "s1_mini_pods"),
    ("s1", S1MiniPod, "nodes"),
)
_NODE_KEYS = frozenset({"id", "gpu_type", "gpu_count"})


def load_topology(path: str | Path) -> Topology:
    """Load a topology from a ``.yaml``/``.yml`` or ``.json`` file.

    Parameters
    ----------
    path : str or Path
        The document; its format is chosen by suffix.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        If the file cannot be parsed, has an unknown or missing key, a value of the wrong type,
        a non-positive GPU count, or an id used twice on one level. The message names the file
        and the path inside the document.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    parse = {".yaml": yaml.safe_load, ".yml": yaml.safe_load, ".json": json.loads}.get(suffix)
    if parse is None:
        raise TopologyError(f"{path}: unknown topology format {suffix!r} (use .yaml or .json)")
    try:
        document = parse(path.read_text())
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise TopologyError(f"{path}: not valid {suffix[1:].upper()}: {error}") from error
    return parse_topology(document, source=str(path))


def parse_topology(document: Any, *, source: str = "<topology>") -> Topology:
    """Build a topology from an already parsed document (the same format as a file).

    Parameters
    ----------
    document : Any
        The parsed mapping with a single ``vdcs`` key.
    source : str, default "<topology>"
        What to call the document in error messages.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        As :func:`load_topology`.
    """
    placed: list[tuple[str, str, str]] = []  # (level, id, path), to locate a duplicate id
    root = _mapping(document, {"vdcs"}, source, "document")
    vdcs = _parse_level(root["vdcs"], 0, "vdcs", source, placed)
    try:
        return Topology(tuple(vdcs))
    except DuplicateIdError as error:
        where = [p for lvl, item, p in placed if (lvl, item) == (error.level, error.item_id)]
        raise TopologyError(
            f"{source}: {error.level} id {error.item_id!r} is used at {' and '.join(where)}"
        ) from error


def _parse_level(items: Any, depth: int, path: str, source: str, placed: list) -> list:
    if depth == len(_LEVELS):
        return [
            _parse_node(item, f"{path}[{i}]", source, placed)
            for i, item in enumerate(_list(items, source, path))
        ]
    level, cls, child_key = _LEVELS[depth]
    built = []
    for i, item in enumerate(_list(items, source, path)):
        here = f"{path}[{i}]"
        fields = _mapping(item, {"id", child_key}, source, here)
        children = _parse_level(fields[child_key], depth + 1, f"{here}.{child_key}", source, placed)
        built.append(_build(cls, (fields["id"], tuple(children)), source, here))
        placed.append((level, fields["id"], here))
    return built


def _parse_node(item: Any, path: str, source: str, placed: list) -> Node:
    fields = _mapping(item, _NODE_KEYS, source, path)
    node = _build(Node, (fields["id"], fields["gpu_type"], fields["gpu_count"]), source, path)
    placed.append(("node", node.id, path))
    return node


def _build(cls, args: tuple, source: str, path: str):
    try:
        return cls(*args)
    except TopologyError as error:
        raise TopologyError(f"{source}: {path}: {error}") from error


def _mapping(value: Any, keys: set[str] | frozenset[str], source: str, path: str) -> dict:
    if not isinstance(value, dict):
        raise TopologyError(f"{source}: {path}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - keys)
    if unknown:
        raise TopologyError(f"{source}: {path}: unknown key(s) {unknown}; expected {sorted(keys)}")
    missing = sorted(keys - set(value))
    if missing:
        raise TopologyError(f"{source}: {path}: missing key(s) {missing}")
    return value


def _list(value: Any, source: str, path: str) -> list:
    if not isinstance(value, list):
        raise TopologyError(f"{source}: {path}: expected a list, got {type(value).__name__}")
    return value
