"""``heteroscale export``: the validated policy of a store as files a cluster applies."""

import argparse
from pathlib import Path

from telemetry.store import DB_ENV_VAR, default_db_path

#: The export formats (:data:`policies.exporters.FORMATS`, named here so that ``--help`` does
#: not import the policy stack).
FORMATS = ("policy", "keda", "hpa", "prometheus-rules")


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="write the validated policy as a spec, Prometheus rules, KEDA or HPA manifests",
        description=(
            "Build the policy spec of the store's curated policy, check the publication gate "
            "(SLO attainment and fewer GPU-hours than static peak on the evaluation days), and "
            "write one format: the spec YAML (policy), a PrometheusRule and plain rule file "
            "with the recording rules (prometheus-rules), KEDA ScaledObjects per role (keda), "
            "or autoscaling/v2 HPAs with a prometheus-adapter rule (hpa). Nothing is written "
            "for a policy that failed the gate (docs/deploy.md)."
        ),
    )
    export.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    export.add_argument("--out", type=Path, required=True, help="directory to write into")
    export.add_argument(
        "--db", type=Path, help=f"DuckDB store (default ${DB_ENV_VAR}, else {default_db_path()})"
    )
    export.add_argument("--service", help="the service to export (default: the store's only one)")
    export.add_argument("--namespace", help="namespace of the manifests (default: default)")
    export.add_argument("--prefill-deployment", help="prefill Deployment (default SERVICE-prefill)")
    export.add_argument("--decode-deployment", help="decode Deployment (default SERVICE-decode)")
    export.add_argument(
        "--prometheus-url",
        help="the Prometheus KEDA queries, which must evaluate the exported rules (default: "
        "http://prometheus-operated.monitoring.svc:9090, prometheus-operator's service)",
    )
    export.add_argument(
        "--decode-matchers",
        help="PromQL label matchers of the decode pods' token counter (default "
        'model_name="SERVICE",role="decode")',
    )
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from policies.exporters import ClusterBinding, write_exports
    from policies.spec import spec_from_store
    from telemetry.store import TelemetryStore

    names = {
        "namespace": args.namespace,
        "prefill_deployment": args.prefill_deployment,
        "decode_deployment": args.decode_deployment,
        "prometheus_url": args.prometheus_url,
        "decode_matchers": args.decode_matchers,
    }
    binding = ClusterBinding(**{k: v for k, v in names.items() if v is not None})
    spec = spec_from_store(TelemetryStore(args.db or default_db_path()), args.service)
    paths = write_exports(spec, [args.format], args.out, binding)
    for path in paths:
        print(path)
    return 0
