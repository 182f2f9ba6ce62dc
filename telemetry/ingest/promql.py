"""PromQL for each canonical signal, rendered from the metric catalog.

The queries do on the Prometheus server what :mod:`telemetry.ingest.semantics` does on files:
``rate`` for counters, ``histogram_quantile`` for histograms, ``avg_over_time`` for gauges,
grouped by the instance label. One query per catalog entry (not one ``or`` of all names), so
the reader can tell which name answered, prefer current names per instance and apply the
entry's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.ingest import catalog as cat

DEFAULT_STACKS = ("vllm", "sglang", "dcgm", "kube-state-metrics", "dynamo")


@dataclass(frozen=True)
class Query:
    """One PromQL query and what its answer is."""

    column: str
    expr: str
    signal: cat.Signal | None
    priority: int


def _selector(extra: str, selector: str) -> str:
    return "{" + ",".join(part for part in (extra, selector) if part) + "}"


def render(
    *,
    selector: str = "",
    stacks: tuple[str, ...] = DEFAULT_STACKS,
    window_s: float,
    instance_label: str = "pod",
    overrides: dict[str, str] | None = None,
    by_service: bool = False,
) -> list[Query]:
    """The queries of the chosen stacks, plus user overrides for whole columns.

    Parameters
    ----------
    selector : str
        Label matchers added to every series, e.g. ``namespace="llm",service="chat"``.
    stacks : tuple of str
        Catalog stacks to query.
    window_s : float
        Range of ``rate`` and ``*_over_time``; a value at evaluation time T describes
        ``(T - window_s, T]``.
    instance_label : str
        The label that names an instance (``pod`` on Kubernetes, else ``instance``).
    overrides : dict, optional
        Canonical column -> a PromQL expression that replaces the catalog's queries for it;
        ``{selector}`` and ``{window}`` are substituted. It must return one series per
        instance with the instance label.
    by_service : bool
        Keep the service labels (:data:`catalog.SERVICE_LABELS`) on service-level series
        (the frontend's), when no service was given and the labels must name it.
    """
    window = f"{window_s:g}s"
    by = instance_label
    queries: list[Query] = []
    overrides = overrides or {}
    for priority, s in enumerate(cat.CATALOG):
        if s.stack not in stacks or s.column in overrides:
            continue
        extra = '{}="{}"'.format(*cat.READY_CONDITION) if s.column == "ready" else ""
        series = f"{s.sample_name}{_selector(extra, selector)}"
        if s.level == "instance":
            group = f" by ({by})"
        else:
            group = f" by ({', '.join(cat.SERVICE_LABELS)})" if by_service else ""
        if s.kind == "counter":
            queries.append(Query(s.column, f"sum{group} (rate({series}[{window}]))", s, priority))
        elif s.kind == "gauge":
            combine = "sum" if s.rollup == "sum" else "avg"
            expr = f"{combine}{group} (avg_over_time({series}[{window}]))"
            queries.append(Query(s.column, expr, s, priority))
        else:
            for name, q in cat.QUANTILES.items():
                expr = f"histogram_quantile({q}, sum by ({by}, le) (rate({series}[{window}])))"
                queries.append(Query(f"{s.column}_{name}_s", expr, s, priority))
    for column, expr in overrides.items():
        text = expr.replace("{selector}", selector).replace("{window}", window)
        queries.append(Query(column, text, None, -1))
    return queries


def attribute_queries(
    *, selector: str = "", instance_label: str = "pod", stacks: tuple[str, ...] = DEFAULT_STACKS
) -> dict[str, str]:
    """Queries whose series carry each instance's role, service, GPU model and GPU count.

    ``role``: one series per (instance, role labels, service labels) of any engine gauge;
    ``gpu``: the number of DCGM GPU series per (instance, modelName), which is the instance's
    GPU count.
    """
    engines = [
        s.sample_name for s in cat.CATALOG if s.stack in stacks and s.column == "running_requests"
    ]
    labels = ", ".join((instance_label, *cat.ROLE_LABELS, *cat.SERVICE_LABELS))
    roles = " or ".join(f"count by ({labels}) ({m}{_selector('', selector)})" for m in engines)
    gpu = next(s for s in cat.CATALOG if s.column == "gpu_util_ratio")
    gpus = f"count by ({instance_label}, modelName) ({gpu.sample_name}{_selector('', selector)})"
    return {"role": roles, "gpu": gpus}
