"""Exports of a validated policy spec that a real cluster runs (docs/deploy.md).

Each format renders a :class:`policies.spec.PolicySpec` and a
:class:`~policies.exporters.binding.ClusterBinding` as files (name -> YAML text):

- ``policy``: the spec itself (:func:`policies.spec.dump`);
- ``prometheus-rules``: the recording rules as a prometheus-operator ``PrometheusRule`` and
  as a plain rule file;
- ``keda``: one KEDA ``ScaledObject`` per role, following the recorded desired replicas;
- ``hpa``: one autoscaling/v2 ``HorizontalPodAutoscaler`` per role on the same series as an
  External metric, with the prometheus-adapter rule that serves it.

Rendering is plain; :func:`write_exports` is the publication step and refuses a spec the
gate did not pass, so nothing unvalidated reaches a cluster through this package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from policies.exporters.binding import ClusterBinding
from policies.exporters.hpa import adapter_rules, horizontal_pod_autoscalers
from policies.exporters.keda import scaled_objects
from policies.exporters.prometheus_rules import prometheus_rule, rule_file
from policies.spec import PolicySpec, dump

__all__ = ["FORMATS", "ClusterBinding", "render", "write_exports"]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer PromQL expressions) as literal blocks."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def _yaml(*documents: object) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=120)


#: Format name -> renderer (spec, binding) -> {file name: text}.
FORMATS: dict[str, Callable[[PolicySpec, ClusterBinding], dict[str, str]]] = {
    "policy": lambda spec, binding: {"policy-spec.yaml": dump(spec)},
    "prometheus-rules": lambda spec, binding: {
        "prometheus-rule.yaml": _yaml(prometheus_rule(spec, binding)),
        "heteroscale.rules.yaml": _yaml(rule_file(spec, binding)),
    },
    "keda": lambda spec, binding: {
        "keda-scaledobjects.yaml": _yaml(*scaled_objects(spec, binding))
    },
    "hpa": lambda spec, binding: {
        "hpa.yaml": _yaml(*horizontal_pod_autoscalers(spec, binding)),
        "prometheus-adapter-rules.yaml": _yaml(adapter_rules()),
    },
}


def render(spec: PolicySpec, fmt: str, binding: ClusterBinding | None = None) -> dict[str, str]:
    """The files of one format, each led by a comment naming the policy and its evidence.

    Raises
    ------
    ValueError
        On an unknown format, naming the known ones.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    header = _header(spec)
    return {
        name: header + text
        for name, text in FORMATS[fmt](spec, binding or ClusterBinding()).items()
    }


def write_exports(
    spec: PolicySpec, formats: list[str], out_dir: Path, binding: ClusterBinding | None = None
) -> list[Path]:
    """Write the files of ``formats`` into ``out_dir``; only a spec that passed the gate.

    Raises
    ------
    ValueError
        When the spec failed the publication gate (its reasons in words), or on an unknown
        format; nothing is written then.
    """
    if not spec.validation.passed:
        raise ValueError(spec.validation.summary())
    files = {name: text for fmt in formats for name, text in render(spec, fmt, binding).items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in files]


def _header(spec: PolicySpec) -> str:
    provenance, verdict = spec.provenance, spec.validation
    lines = [
        f"heteroscale policy {spec.policy} for service {spec.service}",
        f"curated on {provenance.trace}",
        f"curation from {provenance.curation_start:%Y-%m-%d %H:%M} until "
        f"{provenance.evaluation_start:%Y-%m-%d %H:%M}, evaluation until "
        f"{provenance.evaluation_end:%Y-%m-%d %H:%M} (UTC)",
        f"publication gate: {'passed' if verdict.passed else 'FAILED'}",
        *(f"  - {reason}" for reason in verdict.reasons),
    ]
    return "".join(f"# {line}\n" for line in lines)
