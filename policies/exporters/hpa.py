"""A plain Kubernetes HPA (autoscaling/v2) per role, for clusters without KEDA.

Each role's HPA follows its recorded desired replicas through the External metrics API, so
it needs an adapter that serves Prometheus series there: :func:`adapter_rules` is the
prometheus-adapter rule that exposes ``heteroscale:desired_replicas`` as the external metric
:data:`EXTERNAL_METRIC`. The scaling behaviour (:func:`behavior`) is shared with the KEDA
export, which hands it to the HPA KEDA creates.
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL
from policies.exporters.binding import ClusterBinding
from policies.exporters.prometheus_rules import DESIRED
from policies.sizing import ceil_count
from policies.spec import PolicySpec

#: The external metric name of the recorded desired replicas (colons are not allowed there).
EXTERNAL_METRIC = "heteroscale_desired_replicas"
#: The HPA's longest policy period (autoscaling/v2 validation).
MAX_PERIOD_S = 1800


def behavior(spec: PolicySpec) -> dict:
    """HPA scaling behaviour that follows the rules' decisions and guards their pace.

    The rules already apply the hysteresis band and the cool-downs, so the HPA adds no band
    of its own (``tolerance: 0``; the cluster default is 10%, which would swallow a
    one-instance step of a small decode pool and break the ratio) and no stabilisation
    window (it would delay a scale-in the rules have already waited for). Its rate limits
    repeat the policy's damping per cool-down: at most ``scale_out_step`` of a role's
    replicas per scale-out cool-down, ``scale_in_step`` per scale-in cool-down, the bound a
    misbehaving signal cannot push past. A period cannot be zero or exceed
    :data:`MAX_PERIOD_S`, so a zero cool-down becomes one control interval.
    """
    config = spec.controller

    def rules(step: float, cooldown_s: float) -> dict:
        period = round(min(max(cooldown_s, spec.control_interval_s), MAX_PERIOD_S))
        return {
            "stabilizationWindowSeconds": 0,
            "tolerance": "0",
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": ceil_count(step * 100), "periodSeconds": period}
            ],
        }

    return {
        "scaleUp": rules(config.scale_out_step, config.scale_out_cooldown_s),
        "scaleDown": rules(config.scale_in_step, config.scale_in_cooldown_s),
    }


def horizontal_pod_autoscalers(spec: PolicySpec, binding: ClusterBinding) -> list[dict]:
    """One HPA per role, each targeting one replica per unit of its desired-replicas metric
    (``AverageValue`` 1: the HPA runs exactly the recorded count)."""
    return [
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": head["metadata"],
            "spec": {
                "scaleTargetRef": head["scaleTargetRef"],
                "minReplicas": spec.pool(role).min_instances,
                "maxReplicas": spec.pool(role).max_instances,
                "metrics": [
                    {
                        "type": "External",
                        "external": {
                            "metric": {
                                "name": EXTERNAL_METRIC,
                                "selector": {
                                    "matchLabels": {"service": spec.service, "role": role}
                                },
                            },
                            "target": {"type": "AverageValue", "averageValue": "1"},
                        },
                    }
                ],
                "behavior": behavior(spec),
            },
        }
        for role in (PREFILL, DECODE)
        for head in (binding.autoscaler_head(role, spec.service),)
    ]


def adapter_rules() -> dict:
    """prometheus-adapter configuration serving the recorded desired replicas as
    :data:`EXTERNAL_METRIC`, not namespaced (the rules' series carry no namespace)."""
    return {
        "externalRules": [
            {
                "seriesQuery": f'{{__name__="{DESIRED}",service!="",role!=""}}',
                "name": {"matches": f"^{DESIRED}$", "as": EXTERNAL_METRIC},
                "metricsQuery": "max(<<.Series>>{<<.LabelMatchers>>}) by (service, role)",
                "resources": {"namespaced": False},
            }
        ]
    }
