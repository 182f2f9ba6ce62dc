"""Recording rules that compute the coordinated policy's replicas per role inside Prometheus.

KEDA and the HPA each scale one workload from one metric; neither keeps two workloads in
ratio. HeteroScale's proportional core needs nothing else, though: the shared desired total
from decode tokens/s, the hysteresis band, the cool-downs, the damped step and the P/D split
are arithmetic on series Prometheus already holds. So one rule group computes, every control
interval, the replicas each role should run (``heteroscale:desired_replicas{role=...}``),
and each role's autoscaler merely follows its own series (threshold 1, ``AverageValue``):
the ratio is kept by construction, with stock parts and no custom controller.

The rules mirror :meth:`policies.heteroscale.HeteroScale.observe` step by step (tests run
both on the same numbers): ``T = ceil(M / (m u))`` at least 1; act only when ``T / current``
leaves ``[1 - in, 1 + out]``, no instance is starting and the cool-down has passed; move
by at most the damped step; split ``round(T r / (1 + r))`` prefill, the rest decode; clamp
to the bounds; otherwise, or when a series is missing, ask for what runs now. What they
cannot carry (latency tiers, the scale-in guard, soft scale-in) is listed in docs/deploy.md.

Every operand is wrapped in ``sum()`` so that the expressions combine label-free vectors;
each rule stamps its result with ``service`` (and ``role``).
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL
from policies.exporters.binding import ClusterBinding, object_labels
from policies.spec import PolicySpec

SIGNAL = "heteroscale:decode_tps"
CURRENT = "heteroscale:instances:current"
READY = "heteroscale:instances:ready"
CURRENT_TOTAL = "heteroscale:instances:current_total"
STARTING_TOTAL = "heteroscale:instances:starting_total"
PROPORTIONAL_TOTAL = "heteroscale:instances:proportional_total"
TARGET_TOTAL = "heteroscale:instances:target_total"
SPLIT = "heteroscale:instances:split"
#: What each role's autoscaler follows.
DESIRED = "heteroscale:desired_replicas"

#: ``ceil`` ignores binary noise below this, as :func:`policies.sizing.ceil_count` does.
_NOISE = 1e-9


def rule_groups(spec: PolicySpec, binding: ClusterBinding) -> list[dict]:
    """The policy's rule group: evaluated every control interval, rules in order (each
    reads the ones above it from the same evaluation)."""
    service, config = spec.service, spec.controller

    def of(name: str, role: str | None = None) -> str:
        role_matcher = f',role="{role}"' if role else ""
        return f'sum({name}{{service="{service}"{role_matcher}}})'

    def unless_changed_within(seconds: float) -> list[str]:
        """Hold while the last change of the running total is younger than a cool-down."""
        if not seconds:
            return []
        changes = f'changes({CURRENT_TOTAL}{{service="{service}"}}[{_duration(seconds)}])'
        return [f"unless (sum({changes}) > 0)"]

    current, proportional = of(CURRENT_TOTAL), of(PROPORTIONAL_TOTAL)
    hold_while_starting = f"unless ({of(STARTING_TOTAL)} > 0)"
    out_step = f"clamp_min(ceil({config.scale_out_step!r} * {current} - {_NOISE!r}), 1)"
    in_step = f"clamp_min(ceil({config.scale_in_step!r} * {current} - {_NOISE!r}), 1)"
    scale_out = [
        f"(({proportional} < {current} + {out_step}) or ({current} + {out_step}))",
        f"and ({proportional} / {current} > 1 + {config.scale_out_threshold!r})",
        *unless_changed_within(config.scale_out_cooldown_s),
        hold_while_starting,
    ]
    scale_in = [
        f"(({proportional} > {current} - {in_step}) or ({current} - {in_step}))",
        f"and ({proportional} / {current} < 1 - {config.scale_in_threshold!r})",
        *unless_changed_within(config.scale_in_cooldown_s),
        hold_while_starting,
    ]
    target, r = of(TARGET_TOTAL), spec.pd_ratio
    prefill_share = f"clamp_min(round({target} * {r!r} / (1 + {r!r})), 1)"
    per_instance = f"({spec.decode_tps_per_instance!r} * {config.utilisation_target!r})"
    tokens = f"{binding.decode_tokens_metric}{{{binding.decode_selector(service)}}}"
    rules = [
        _record(SIGNAL, f"sum(rate({tokens}[{binding.rate_window}]))", service),
        *(
            _record(
                CURRENT,
                _deployment_sum(binding.replicas_metric, binding, role, service),
                service,
                role,
            )
            for role in (PREFILL, DECODE)
        ),
        *(
            _record(
                READY, _deployment_sum(binding.ready_metric, binding, role, service), service, role
            )
            for role in (PREFILL, DECODE)
        ),
        _record(CURRENT_TOTAL, of(CURRENT), service),
        _record(STARTING_TOTAL, f"clamp_min({current} - {of(READY)}, 0)", service),
        _record(
            PROPORTIONAL_TOTAL,
            f"clamp_min(ceil({of(SIGNAL)} / {per_instance} - {_NOISE!r}), 1)",
            service,
        ),
        _record(
            TARGET_TOTAL,
            "clamp(\n  (\n    "
            + "\n    ".join(scale_out)
            + "\n  )\n  or\n  (\n    "
            + "\n    ".join(scale_in)
            + f"\n  ),\n  2, {spec.max_total}\n)",
            service,
        ),
        _record(SPLIT, f"({prefill_share} <= {target} - 1) or ({target} - 1)", service, PREFILL),
        _record(SPLIT, f"{target} - {of(SPLIT, PREFILL)}", service, DECODE),
        *(
            _record(
                DESIRED,
                f"clamp({of(SPLIT, role)}, {spec.pool(role).min_instances}, "
                f"{spec.pool(role).max_instances}) or {of(CURRENT, role)}",
                service,
                role,
            )
            for role in (PREFILL, DECODE)
        ),
    ]
    return [
        {
            "name": f"heteroscale-{service}",
            "interval": _duration(spec.control_interval_s),
            "rules": rules,
        }
    ]


def rule_file(spec: PolicySpec, binding: ClusterBinding) -> dict:
    """A plain Prometheus rule file (``rule_files:``; what ``promtool check rules`` reads)."""
    return {"groups": rule_groups(spec, binding)}


def prometheus_rule(spec: PolicySpec, binding: ClusterBinding) -> dict:
    """The same groups as a prometheus-operator ``PrometheusRule`` (monitoring.coreos.com/v1)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": f"heteroscale-{spec.service}",
            "namespace": binding.namespace,
            "labels": object_labels(spec.service),
        },
        "spec": {"groups": rule_groups(spec, binding)},
    }


def desired_query(spec: PolicySpec, role: str) -> str:
    """The instant query of the replicas ``role`` should run (KEDA's trigger reads it)."""
    return f'{DESIRED}{{service="{spec.service}",role="{role}"}}'


def _record(name: str, expr: str, service: str, role: str | None = None) -> dict:
    return {
        "record": name,
        "expr": expr,
        "labels": {"service": service, **({"role": role} if role else {})},
    }


def _deployment_sum(metric: str, binding: ClusterBinding, role: str, service: str) -> str:
    deployment = binding.deployment(role, service)
    return f'sum({metric}{{namespace="{binding.namespace}",deployment="{deployment}"}})'


def _duration(seconds: float) -> str:
    """A PromQL duration: whole seconds, else milliseconds (PromQL takes no fractions)."""
    return f"{seconds:.0f}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"
