"""Read service requirements from YAML (or JSON), with a default for services not listed.

The format, one mapping per service plus an optional ``default`` applied to the rest::

    default:                      # optional; these values are the built-in default
      prefill: {gpu_type: L20, fallback_gpu_types: [H20], gpus_per_instance: 4}
      decode: {gpu_type: H20, fallback_gpu_types: [L20], gpus_per_instance: 4}
      affinity: s2                # s1, s2 or none
      priority: 0
      ratio_tolerance: 1.0
    services:
      chat:
        pd_ratio: 0.5             # prefill per decode; default: from the service's targets
        priority: 2               # any key left out comes from ``default``

The built-in default is the shape of the project's default cluster (prefill on 4 x L20,
decode on 4 x H20, the GPU types of the paper's fleet; data/topologies/default.yaml). A
service's ``pd_ratio``, when neither it nor ``default`` gives one, is its total prefill target
over its total decode target: the ratio its decisions ask for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from scheduler.requirements import RoleRequirements, ServiceRequirements

#: Built-in default for every key of a service entry except ``pd_ratio``.
DEFAULT_SERVICE: dict[str, Any] = {
    "prefill": {"gpu_type": "L20", "fallback_gpu_types": ["H20"], "gpus_per_instance": 4},
    "decode": {"gpu_type": "H20", "fallback_gpu_types": ["L20"], "gpus_per_instance": 4},
    "affinity": "s2",
    "priority": 0,
    "ratio_tolerance": 1.0,
}
_SERVICE_KEYS = frozenset({*DEFAULT_SERVICE, "pd_ratio"})
_ROLE_KEYS = frozenset({"gpu_type", "fallback_gpu_types", "gpus_per_instance"})


class RequirementsError(ValueError):
    """A requirements document that cannot be read; the message names the file and entry."""


def load_requirements_document(path: str | Path) -> dict[str, Any]:
    """The parsed document of a requirements file (YAML, or JSON by extension)."""
    path = Path(path)
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise RequirementsError(f"{path}: cannot read requirements: {error}") from error
    document = {} if document is None else document
    if not isinstance(document, dict) or set(document) - {"default", "services"}:
        raise RequirementsError(f"{path}: expected a mapping with keys 'default' and 'services'")
    return document


def build_requirements(
    document: dict[str, Any],
    ratios: dict[str, float],
    *,
    source: str = "requirements",
) -> dict[str, ServiceRequirements]:
    """Requirements for every service of ``ratios`` (listed or not in the document).

    Parameters
    ----------
    document : dict
        As :func:`load_requirements_document` returns; ``{}`` for the built-in default.
    ratios : dict of str to float
        Each service to place, with the P/D ratio to use if the document gives none.
    source : str
        Names the document in error messages.

    Raises
    ------
    RequirementsError
        On an unknown key or an invalid value, naming the service.
    """
    default = _merge(DEFAULT_SERVICE, document.get("default") or {}, f"{source}: default")
    listed = document.get("services") or {}
    if not isinstance(listed, dict):
        raise RequirementsError(f"{source}: services must be a mapping of name to entry")
    unknown = sorted(set(listed) - set(ratios))
    if unknown:
        raise RequirementsError(f"{source}: services {unknown} have no decisions")
    requirements = {}
    for service, ratio in ratios.items():
        where = f"{source}: services.{service}"
        entry = _merge(default, listed.get(service) or {}, where)
        try:
            requirements[service] = ServiceRequirements(
                prefill=_role(entry["prefill"], f"{where}.prefill"),
                decode=_role(entry["decode"], f"{where}.decode"),
                affinity=entry["affinity"],
                pd_ratio=float(entry.get("pd_ratio", ratio)),
                priority=int(entry["priority"]),
                ratio_tolerance=float(entry["ratio_tolerance"]),
            )
        except (TypeError, ValueError) as error:
            raise RequirementsError(f"{where}: {error}") from error
    return requirements


def _merge(base: dict[str, Any], override: Any, where: str) -> dict[str, Any]:
    if not isinstance(override, dict):
        raise RequirementsError(f"{where}: expected a mapping, got {override!r}")
    unknown = sorted(set(override) - _SERVICE_KEYS)
    if unknown:
        raise RequirementsError(f"{where}: unknown key(s) {unknown}")
    merged = dict(base)
    for role in ("prefill", "decode"):
        if role in override:
            if not isinstance(override[role], dict):
                raise RequirementsError(f"{where}.{role}: expected a mapping")
            merged[role] = {**base[role], **override[role]}
    merged.update({k: v for k, v in override.items() if k not in ("prefill", "decode")})
    return merged


def _role(entry: dict[str, Any], where: str) -> RoleRequirements:
    unknown = sorted(set(entry) - _ROLE_KEYS)
    if unknown:
        raise RequirementsError(f"{where}: unknown key(s) {unknown}")
    fallback = entry.get("fallback_gpu_types") or []
    if not isinstance(fallback, list):
        raise RequirementsError(f"{where}: fallback_gpu_types must be a list")
    return RoleRequirements(entry["gpu_type"], tuple(fallback), entry["gpus_per_instance"])
