"""Where an exported policy meets a cluster: the names the manifests and rules refer to.

The policy spec says how to scale; the binding says what: the namespace and Deployments of
the service's two roles, the Prometheus that KEDA queries, and the series the rules read.
The defaults fit vLLM's own ``model_name`` label (the served model name, which is the
service), a ``role`` label taken from the pods' labels by the scrape configuration, a stock
kube-state-metrics and prometheus-operator's Prometheus service, as the simulator's
``/metrics`` endpoint serves them; a real cluster passes its own names
(``heteroscale export --namespace ... --prefill-deployment ...``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterBinding:
    """Names the exports use.

    Attributes
    ----------
    namespace : str
        Where the service's Deployments, ScaledObjects and HPAs live.
    prefill_deployment, decode_deployment : str or None
        The roles' Deployments (default ``<service>-prefill`` / ``<service>-decode``).
    prometheus_url : str
        The Prometheus KEDA's scaler queries (it must evaluate the exported rules).
    decode_tokens_metric : str
        Counter of generated tokens (vLLM's; SGLang's is ``sglang:generation_tokens_total``).
    decode_matchers : str or None
        PromQL label matchers selecting the decode pods' series (default
        ``model_name="<service>",role="decode"``).
    rate_window : str
        Range of ``rate()`` over the counter: at least four scrape intervals.
    replicas_metric, ready_metric : str
        kube-state-metrics' Deployment replica series: asked for (includes starting pods) and
        ready.
    """

    namespace: str = "default"
    prefill_deployment: str | None = None
    decode_deployment: str | None = None
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    decode_tokens_metric: str = "vllm:generation_tokens_total"
    decode_matchers: str | None = None
    rate_window: str = "1m"
    replicas_metric: str = "kube_deployment_spec_replicas"
    ready_metric: str = "kube_deployment_status_replicas_ready"

    def deployment(self, role: str, service: str) -> str:
        """The Deployment of ``role`` for ``service``."""
        named = self.prefill_deployment if role == "prefill" else self.decode_deployment
        return named or f"{service}-{role}"

    def autoscaler_head(self, role: str, service: str) -> dict:
        """What a role's autoscaler object (ScaledObject or HPA) is called and scales: its
        ``metadata`` and its ``spec.scaleTargetRef``, the role's Deployment."""
        name = self.deployment(role, service)
        return {
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": object_labels(service, role),
            },
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        }

    def decode_selector(self, service: str) -> str:
        """The label matchers of the decode pods' token counter."""
        return self.decode_matchers or f'model_name="{service}",role="decode"'


def object_labels(service: str, role: str | None = None) -> dict[str, str]:
    """Labels every exported object carries, so ``kubectl -l`` finds (and removes) them."""
    return {
        "app.kubernetes.io/managed-by": "heteroscale",
        "heteroscale/service": service,
        **({"heteroscale/role": role} if role else {}),
    }
