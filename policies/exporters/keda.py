"""KEDA ScaledObjects, one per role, each following its recorded desired replicas.

KEDA's Prometheus scaler runs the instant query of a role's ``heteroscale:desired_replicas``
and hands the value to the HPA it creates as an ``AverageValue`` metric with threshold 1,
so the HPA's desired count is that value: the rules decide, KEDA and the HPA apply. What
maps where (docs/deploy.md):

- ``pollingInterval``: the control interval. KEDA's ``cooldownPeriod`` only governs scaling
  to zero, which the policy never does (``minReplicaCount`` is the pool's lower bound), so
  the policy's cool-downs live in the rules and in the HPA behaviour
  (:func:`policies.exporters.hpa.behavior`).
- ``ignoreNullValues: "false"``: when the series is missing (Prometheus or kube-state-metrics
  down), KEDA reports an error instead of a zero, and an HPA without a metric keeps the
  replicas it has, the policy's "hold on stale metrics, never scale in blind". No
  ``fallback`` is set: a static fallback would move the pool to a fixed count.
"""

from __future__ import annotations

from policies.controller import DECODE, PREFILL
from policies.exporters.binding import ClusterBinding
from policies.exporters.hpa import behavior
from policies.exporters.prometheus_rules import desired_query
from policies.spec import PolicySpec


def scaled_objects(spec: PolicySpec, binding: ClusterBinding) -> list[dict]:
    """The prefill and decode ScaledObjects (keda.sh/v1alpha1)."""
    return [
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": head["metadata"],
            "spec": {
                "scaleTargetRef": head["scaleTargetRef"],
                "pollingInterval": round(spec.control_interval_s),
                "minReplicaCount": spec.pool(role).min_instances,
                "maxReplicaCount": spec.pool(role).max_instances,
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "name": f"keda-hpa-{binding.deployment(role, spec.service)}",
                        "behavior": behavior(spec),
                    }
                },
                "triggers": [
                    {
                        "type": "prometheus",
                        "name": f"heteroscale-{role}",
                        "metricType": "AverageValue",
                        "metadata": {
                            "serverAddress": binding.prometheus_url,
                            "query": desired_query(spec, role),
                            "threshold": "1",
                            "ignoreNullValues": "false",
                        },
                    }
                ],
            },
        }
        for role in (PREFILL, DECODE)
        for head in (binding.autoscaler_head(role, spec.service),)
    ]
