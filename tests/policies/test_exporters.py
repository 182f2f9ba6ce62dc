"""The exports of a validated policy: each one meets the real schema a cluster applies (the
KEDA and prometheus-operator CRDs, Kubernetes' own OpenAPI for the HPA, ``promtool`` for rule
files), the recording rules decide what the policy's own controller decides on the same
numbers, and nothing is written for a policy that failed the gate."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from heteroscale.cli import main
from heteroscale.commands import export as export_command
from policies.exporters import FORMATS, ClusterBinding, render, write_exports
from policies.exporters.hpa import EXTERNAL_METRIC, adapter_rules, horizontal_pod_autoscalers
from policies.exporters.keda import scaled_objects
from policies.exporters.prometheus_rules import DESIRED, prometheus_rule, rule_file
from policies.heteroscale import HeteroScale
from tests.policies.test_spec import (
    CONFIG,
    curated_tables,
    make_spec,
    policy_inputs,
    with_bounds,
    write_store,
)
from tests.policies.windows import DECODE_KEY, PREFILL_KEY, window

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "data" / "schemas"
#: Set in CI: a missing promtool fails instead of skipping.
REQUIRE_ENV = "HETEROSCALE_REQUIRE_PROMETHEUS"
#: Decode tokens/s one instance is sized for: m = 200 at u = 0.8.
PER_INSTANCE = 160.0


@pytest.fixture(scope="module")
def promtool() -> str:
    """The ``promtool`` binary; skips without it (fails under :data:`REQUIRE_ENV`)."""
    found = shutil.which("promtool")
    if found is None:
        message = "needs promtool (Debian package prometheus; .ci/run installs it)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return found


def crd_validator(file: str) -> jsonschema.Draft7Validator:
    """The CRD's served schema, made strict: an API server prunes unknown fields silently,
    so a misspelt field would vanish on a cluster; here it is an error."""
    crd = yaml.safe_load((SCHEMAS / file).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _strict(node):
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items()}
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def test_the_prometheus_rule_meets_the_prometheus_operator_crd():
    rule = prometheus_rule(make_spec(), ClusterBinding())
    validator = crd_validator("monitoring.coreos.com_prometheusrules.yaml")
    validator.validate(rule)
    misspelt = {**rule, "spec": {"groups": [{**rule["spec"]["groups"][0], "intervall": "15s"}]}}
    assert not validator.is_valid(misspelt)


def test_the_scaled_objects_meet_the_keda_crd():
    objects = scaled_objects(make_spec(), ClusterBinding(namespace="llm"))
    validator = crd_validator("keda.sh_scaledobjects.yaml")
    for obj in objects:
        validator.validate(obj)
        spec = obj["spec"]
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"]  # the CRD's CEL rule
        assert not validator.is_valid({**obj, "spec": {**spec, "pollingIntervall": 15}})
    assert [o["metadata"]["name"] for o in objects] == ["chat-prefill", "chat-decode"]
    assert {o["metadata"]["namespace"] for o in objects} == {"llm"}


def test_the_hpas_meet_kubernetes_own_schema():
    version = kubernetes_validate.latest_version()
    for hpa in horizontal_pod_autoscalers(make_spec(), ClusterBinding()):
        kubernetes_validate.validate(hpa, version, strict=True)
        broken = {**hpa, "spec": {**hpa["spec"], "maxReplica": 3}}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


def test_promtool_accepts_the_rule_file(promtool, tmp_path):
    path = tmp_path / "heteroscale.rules.yaml"
    path.write_text(render(make_spec(), "prometheus-rules")["heteroscale.rules.yaml"])
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 13 rules found" in done.stdout


def test_each_role_follows_its_own_recorded_series_one_replica_per_unit():
    spec = make_spec()
    recorded = {
        tuple(sorted(r["labels"].items()))
        for r in rule_file(spec, ClusterBinding())["groups"][0]["rules"]
        if r["record"] == DESIRED
    }
    assert recorded == {(("role", role), ("service", "chat")) for role in ("prefill", "decode")}
    for obj, role in zip(
        scaled_objects(spec, ClusterBinding()), ("prefill", "decode"), strict=True
    ):
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["metricType"] == "AverageValue"
        assert trigger["metadata"]["threshold"] == "1"
        assert trigger["metadata"]["query"] == f'{DESIRED}{{service="chat",role="{role}"}}'
        # A missing series is an error (the HPA holds), never a zero (it would scale in).
        assert trigger["metadata"]["ignoreNullValues"] == "false"
    (adapter,) = adapter_rules()["externalRules"]
    assert adapter["name"] == {"matches": f"^{DESIRED}$", "as": EXTERNAL_METRIC}
    for hpa, role in zip(
        horizontal_pod_autoscalers(spec, ClusterBinding()), ("prefill", "decode"), strict=True
    ):
        (metric,) = hpa["spec"]["metrics"]
        assert metric["external"]["metric"]["name"] == EXTERNAL_METRIC
        assert metric["external"]["metric"]["selector"]["matchLabels"] == {
            "service": "chat",
            "role": role,
        }
        assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "1"}


def test_the_hpa_behaviour_is_the_policys_damping_per_cool_down_and_no_band_of_its_own():
    spec = make_spec()  # scale-out 50% per 30 s, scale-in 10% per 300 s
    (hpa, _) = horizontal_pod_autoscalers(spec, ClusterBinding())
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 30}
    ]
    assert behavior["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 10, "periodSeconds": 300}
    ]
    for direction in behavior.values():
        assert direction["stabilizationWindowSeconds"] == 0 and direction["tolerance"] == "0"
    (keda, _) = scaled_objects(spec, ClusterBinding())
    assert keda["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior
    # A cool-down of 0 still needs a period: one control interval.
    instant = replace(spec, controller=replace(CONFIG, scale_out_cooldown_s=0.0))
    (hpa, _) = horizontal_pod_autoscalers(instant, ClusterBinding())
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"][0]["periodSeconds"] == 15


@dataclass(frozen=True)
class Case:
    """A cluster state held from t = 0 (ready, starting per role) under a constant load
    (decode tokens/s in per-instance units; None: no token series, a failed scrape),
    optionally one action the policy takes at ``action_s`` (the replicas change one control
    interval later, as the HPA applies it), judged at ``end_s``; ``expected`` the replicas
    per role by the formula of docs/policy.md, worked by hand."""

    ready: tuple[int, int]
    load: float | None
    expected: tuple[int, int]
    starting: tuple[int, int] = (0, 0)
    action: tuple[int, tuple[int, int]] | None = None
    end_s: int = 1200
    bounds: tuple[int, int] = (512, 512)


CASES = {
    # T = ceil(12.5) = 13 of 10: the step allows 15; 13 x 4/5 = 10.4 -> 10 prefill, 3 decode.
    "scale_out": Case((8, 2), 12.5, (10, 3)),
    # T = 31, damped to 10 + ceil(0.5 x 10) = 15: 12 prefill, 3 decode.
    "damped_scale_out": Case((8, 2), 30.5, (12, 3)),
    # T = 10 of 10: inside the band.
    "hold_in_band": Case((8, 2), 9.6, (8, 2)),
    # T = 9 of 10: 0.9 is the band's edge, not outside it.
    "hold_at_band_edge": Case((8, 2), 8.3, (8, 2)),
    # T = 3 of 10, damped to 10 - max(1, ceil(0.1 x 10)) = 9: 7.2 -> 7 prefill, 2 decode.
    "scale_in": Case((8, 2), 2.5, (7, 2)),
    # Scaled in at 800 s; at 900 s the 300 s cool-down holds.
    "scale_in_cool_down": Case((8, 2), 2.5, (7, 2), action=(800, (7, 2)), end_s=900),
    # ... and at 1200 s it has passed: 9 -> 8, 6.4 -> 6 prefill, 2 decode.
    "scale_in_after_cool_down": Case((8, 2), 2.5, (6, 2), action=(800, (7, 2))),
    # Scaled out at 1170 s; 15 s later the 30 s cool-down holds though T = 21 of 15.
    "scale_out_cool_down": Case((8, 2), 20.5, (12, 3), action=(1170, (12, 3)), end_s=1185),
    # Two prefill instances still starting: no proportional action.
    "hold_while_starting": Case((8, 2), 20.5, (10, 2), starting=(2, 0)),
    # No decode tokens: hold, never scale in blind.
    "hold_on_missing_metrics": Case((8, 2), None, (8, 2)),
    # Prefill bounded at 10: the total stops at 12 (10 x 5/4 = 12.5) to keep the ratio.
    "bounded": Case((8, 2), 30.5, (10, 2), bounds=(10, 512)),
}


@pytest.mark.parametrize("name", CASES)
def test_the_controller_decides_the_worked_cases(name):
    assert controller_replicas(CASES[name]) == CASES[name].expected


@pytest.mark.parametrize("name", CASES)
def test_the_rules_decide_what_the_controller_decides(name, promtool, tmp_path):
    case = CASES[name]
    spec = with_bounds(make_spec(), prefill_max=case.bounds[0], decode_max=case.bounds[1])
    rules = tmp_path / "heteroscale.rules.yaml"
    rules.write_text(render(spec, "prometheus-rules")["heteroscale.rules.yaml"])
    unit = tmp_path / "test.yaml"
    unit.write_text(yaml.safe_dump(promtool_unit_test(case, rules.name)))
    done = subprocess.run([promtool, "test", "rules", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_replica_series_the_rules_record_nothing(promtool, tmp_path):
    """kube-state-metrics down: no desired replicas at all, so KEDA reports an error and the
    HPA keeps what runs (a recorded zero would scale the pools in)."""
    rules = tmp_path / "heteroscale.rules.yaml"
    rules.write_text(render(make_spec(), "prometheus-rules")["heteroscale.rules.yaml"])
    unit = promtool_unit_test(Case((8, 2), 12.5, (10, 3)), rules.name)
    series = unit["tests"][0]["input_series"]
    unit["tests"][0]["input_series"] = [s for s in series if s["series"].startswith("vllm:")]
    unit["tests"][0]["promql_expr_test"][0]["exp_samples"] = []
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit))
    done = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yaml")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def controller_replicas(case: Case) -> tuple[int, int]:
    """What :class:`HeteroScale` asks for at ``case.end_s`` after the case's history."""
    inputs = policy_inputs(prefill_max=case.bounds[0], decode_max=case.bounds[1])
    controller = HeteroScale(inputs, CONFIG)
    tps = None if case.load is None else case.load * PER_INSTANCE

    def observe(t_s, ready, starting=(0, 0)):
        view = window(
            t_s,
            prefill=ready[0],
            decode=ready[1],
            starting=starting,
            decode_tps_total=tps or 0.0,
            stale=tps is None,
        )
        targets = controller.observe(view).targets
        return (
            targets.get(PREFILL_KEY, ready[0] + starting[0]),
            targets.get(DECODE_KEY, ready[1] + starting[1]),
        )

    observe(0, case.ready, case.starting)
    ready = case.ready
    if case.action:
        at_s, after = case.action
        assert observe(at_s, case.ready, case.starting) == after
        ready = after
    return observe(case.end_s, ready, (0, 0) if case.action else case.starting)


def promtool_unit_test(case: Case, rule_file_name: str) -> dict:
    """A ``promtool test rules`` file: the case's series every 15 s (kube-state-metrics'
    Deployment replicas, vLLM's token counter), expecting ``case.expected`` at ``end_s``."""
    steps = case.end_s // 15 + 1

    def state(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
        if case.action and 15 * k > case.action[0]:
            return case.action[1], (0, 0)
        return case.ready, case.starting

    def values(pick) -> str:
        return " ".join(str(pick(*state(k), k)) for k in range(steps))

    series = []
    for i, role in enumerate(("prefill", "decode")):
        deployment = f'namespace="default",deployment="chat-{role}"'
        series += [
            {
                "series": f"kube_deployment_spec_replicas{{{deployment}}}",
                "values": values(lambda ready, starting, k, i=i: ready[i] + starting[i]),
            },
            {
                "series": f"kube_deployment_status_replicas_ready{{{deployment}}}",
                "values": values(lambda ready, starting, k, i=i: ready[i]),
            },
        ]
    if case.load is not None:
        per_step = case.load * PER_INSTANCE * 15
        series.append(
            {
                "series": 'vllm:generation_tokens_total{model_name="chat",role="decode",pod="d-0"}',
                "values": " ".join(str(per_step * k) for k in range(steps)),
            }
        )
    return {
        "rule_files": [rule_file_name],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": DESIRED,
                        "eval_time": f"{case.end_s}s",
                        "exp_samples": [
                            {
                                "labels": f'{DESIRED}{{service="chat",role="{role}"}}',
                                "value": count,
                            }
                            for role, count in zip(
                                ("prefill", "decode"), case.expected, strict=True
                            )
                        ],
                    }
                ],
            }
        ],
    }


def test_every_format_renders_its_files_led_by_the_evidence():
    spec = make_spec()
    files = {fmt: render(spec, fmt) for fmt in FORMATS}
    assert {fmt: sorted(f) for fmt, f in files.items()} == {
        "policy": ["policy-spec.yaml"],
        "prometheus-rules": ["heteroscale.rules.yaml", "prometheus-rule.yaml"],
        "keda": ["keda-scaledobjects.yaml"],
        "hpa": ["hpa.yaml", "prometheus-adapter-rules.yaml"],
    }
    for rendered in files.values():
        for text in rendered.values():
            assert text.startswith("# heteroscale policy heteroscale for service chat\n")
            assert "# publication gate: passed\n" in text
            assert all(yaml.safe_load_all(text))
    assert len(list(yaml.safe_load_all(files["keda"]["keda-scaledobjects.yaml"]))) == 2
    with pytest.raises(ValueError, match="unknown export format 'helm'; known: policy, "):
        render(spec, "helm")


def test_the_command_offers_exactly_the_exporters_formats():
    assert set(export_command.FORMATS) == set(FORMATS)


def test_a_failed_policy_is_not_written(tmp_path):
    failed = make_spec(ttft=0.98)
    with pytest.raises(ValueError, match="failed the publication gate: TTFT .*missed by 1.00"):
        write_exports(failed, list(FORMATS), tmp_path / "deploy")
    assert not (tmp_path / "deploy").exists()
    written = write_exports(make_spec(), ["keda", "policy"], tmp_path / "deploy")
    assert sorted(p.name for p in written) == ["keda-scaledobjects.yaml", "policy-spec.yaml"]


def test_export_command_writes_the_format_from_the_store(tmp_path, capsys):
    db = tmp_path / "h.duckdb"
    write_store(db, curated_tables())
    code = main(
        [
            "export",
            "--format",
            "keda",
            "--db",
            str(db),
            "--out",
            str(tmp_path / "out"),
            "--namespace",
            "llm",
            "--decode-deployment",
            "llama-decode",
        ]
    )
    assert code == 0
    out = tmp_path / "out" / "keda-scaledobjects.yaml"
    assert capsys.readouterr().out == f"{out}\n"
    names = [
        (o["metadata"]["namespace"], o["spec"]["scaleTargetRef"]["name"])
        for o in yaml.safe_load_all(out.read_text())
    ]
    assert names == [("llm", "chat-prefill"), ("llm", "llama-decode")]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (None, "no store at "),
        ({}, "no curated policy in "),
        (curated_tables(tbt=0.95), "heteroscale failed the publication gate: .*TBT p99"),
    ],
)
def test_export_command_refuses_in_one_line(tables, message, tmp_path, capsys):
    db = tmp_path / "h.duckdb"
    if tables is not None:
        write_store(db, tables or {"other": curated_tables()["pd_ratios"]})
    code = main(["export", "--format", "policy", "--db", str(db), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("heteroscale export: ")
    assert re.search(message, err)
    assert not (tmp_path / "o").exists()
