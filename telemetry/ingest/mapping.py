"""The mapping file: what a user states about their telemetry that the data does not say.

YAML, every key optional (docs/ingest.md has a full example)::

    service: chat                      # service of every row (overridden by --service)
    interval_s: 15                     # canonical interval (default 15 s)
    timezone: UTC                      # zone of timestamps written without one
    instances:                         # attributes by instance id, first match wins
      - {match: "prefill-.*", role: prefill, gpu_type: H20, gpus_per_instance: 8}
    defaults: {role: colocated, gpu_type: L20}   # for instances nothing else names
    constants: {sm_active_ratio: 0.0}  # columns a source lacks, stated explicitly
    files:                             # the generic file reader, one entry per file pattern
      - glob: "duty*.csv*"
        layout: long                   # or wide
        column: gpu_util_ratio         # long with one fixed canonical column
        columns: {ts: timestamp_anon, instance_id: container_ip, value: value}
        units: {gpu_util_ratio: percent}
        ts_unit: s                     # numeric epoch timestamps in s or ms
        where: {request_type: "Generative Requests"}
    prometheus:                        # the Prometheus HTTP reader
      selector: 'namespace="llm"'
      stacks: [vllm, dcgm, dynamo]
      queries: {queue_depth: 'sum by (pod) (my_queue{ {selector} })'}

Unknown keys are an error, not ignored: a typo would otherwise silently change a load.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from telemetry.ingest.catalog import UNIT_SCALE
from telemetry.ingest.errors import IngestError

ATTRIBUTES = ("role", "gpu_type", "gpus_per_instance")


@dataclass(frozen=True)
class InstanceRule:
    """Attributes for the instances whose id matches ``match`` (a full regular expression)."""

    match: str
    attributes: dict[str, Any]

    def matches(self, instance_id: str) -> bool:
        return re.fullmatch(self.match, instance_id) is not None


@dataclass(frozen=True)
class FileRule:
    """How to read the files whose name matches ``glob`` with the generic file reader."""

    glob: str
    layout: str = "wide"
    column: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    ts_unit: str | None = None
    where: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatch(path.name, self.glob)


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file (see the module docstring); the empty mapping states nothing."""

    service: str | None = None
    interval_s: float | None = None
    timezone: str | None = None
    instances: tuple[InstanceRule, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    files: tuple[FileRule, ...] = ()
    prometheus: dict[str, Any] = field(default_factory=dict)

    def file_rule(self, path: Path) -> FileRule | None:
        """The first file rule matching ``path``, if any."""
        return next((rule for rule in self.files if rule.matches(path)), None)


TOP_KEYS = {f for f in Mapping.__dataclass_fields__}
FILE_KEYS = {f for f in FileRule.__dataclass_fields__}


def _check_keys(source: str, where: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise IngestError(
            source, f"{where}: unknown keys {unknown}", f"Allowed keys: {sorted(allowed)}"
        )


def load_mapping(path: str | Path | None) -> Mapping:
    """Read a mapping file; ``None`` gives the empty mapping.

    Raises
    ------
    IngestError
        If the file is not YAML, has unknown keys, or names a unit, layout or role that does
        not exist.
    """
    if path is None:
        return Mapping()
    source = str(path)
    try:
        spec = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IngestError(source, f"cannot read the mapping: {exc}", "Fix the YAML.") from exc
    if not isinstance(spec, dict):
        raise IngestError(source, "the mapping is not a YAML mapping", "Start with `service:`.")
    _check_keys(source, "top level", spec, TOP_KEYS)
    rules = []
    for i, rule in enumerate(spec.get("instances") or []):
        _check_keys(source, f"instances[{i}]", rule, {"match", *ATTRIBUTES})
        rules.append(InstanceRule(rule["match"], {k: rule[k] for k in ATTRIBUTES if k in rule}))
    _check_keys(source, "defaults", spec.get("defaults") or {}, set(ATTRIBUTES))
    files = []
    for i, rule in enumerate(spec.get("files") or []):
        _check_keys(source, f"files[{i}]", rule, FILE_KEYS)
        parsed = FileRule(**rule)
        if parsed.layout not in ("wide", "long"):
            raise IngestError(source, f"files[{i}]: layout {parsed.layout!r}", "Use wide or long.")
        bad_units = sorted(set(parsed.units.values()) - set(UNIT_SCALE))
        if bad_units:
            raise IngestError(
                source, f"files[{i}]: unknown units {bad_units}", f"Use one of {list(UNIT_SCALE)}."
            )
        files.append(parsed)
    return Mapping(
        service=spec.get("service"),
        interval_s=spec.get("interval_s"),
        timezone=spec.get("timezone"),
        instances=tuple(rules),
        defaults=dict(spec.get("defaults") or {}),
        constants=dict(spec.get("constants") or {}),
        files=tuple(files),
        prometheus=dict(spec.get("prometheus") or {}),
    )
