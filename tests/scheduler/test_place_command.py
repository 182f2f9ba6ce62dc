"""``heteroscale place``: the plan's figures, and bad input as one line and exit code 2."""

import json

import polars as pl
import pytest

from heteroscale import cli
from scheduler import DEFAULT_TOPOLOGY_PATH, PLAN_SCHEMA, SMALL_TOPOLOGY_PATH

DECISIONS = pl.DataFrame(
    {
        "cycle": [0, 0, 1, 1],
        "service": ["chat", "batch", "chat", "batch"],
        "target_prefill": [2, 1, 3, 0],
        "target_decode": [4, 1, 6, 0],
    }
)


def main(argv: list[str]) -> int:
    return cli.main(["place", *argv])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_prints_metrics_and_final_instances_as_json(tmp_path, capsys, suffix):
    decisions = tmp_path / f"decisions{suffix}"
    {
        ".csv": DECISIONS.write_csv,
        ".parquet": DECISIONS.write_parquet,
        ".json": DECISIONS.write_json,
    }[suffix](decisions)
    code = main(["--topology", str(DEFAULT_TOPOLOGY_PATH), "--decisions", str(decisions), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    metrics = summary["metrics"]
    assert metrics["cycles"] == 2
    assert metrics["affinity_satisfied"] == 1.0 and metrics["affinity_violations"] == 0
    assert metrics["shortfall_instances"] == 0
    assert 0.0 <= metrics["fragmentation"] <= 1.0
    assert metrics["priority_weighted_cost"] > 0
    assert {
        r["service"]: (r["prefill_instances"], r["decode_instances"]) for r in summary["services"]
    } == {
        "batch": (0, 0),
        "chat": (3, 6),
    }


def test_requirements_file_overrides_the_default(tmp_path, capsys):
    decisions = tmp_path / "d.csv"
    DECISIONS.write_csv(decisions)
    needs = tmp_path / "needs.yaml"
    needs.write_text(
        "default:\n  prefill: {gpu_type: H20, fallback_gpu_types: [], gpus_per_instance: 8}\n"
        "  decode: {gpu_type: H20, gpus_per_instance: 8}\n"
        "services:\n  chat: {pd_ratio: 0.5, affinity: s1}\n"
    )
    argv = ["--topology", str(SMALL_TOPOLOGY_PATH), "--decisions", str(decisions)]
    assert main([*argv, "--requirements", str(needs), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    # Every instance is a whole H20 node: nothing is left on a half-used node.
    assert metrics["fragmentation"] == 0.0
    assert metrics["affinity_violations"] == 0


@pytest.mark.parametrize(
    ("content", "needs", "message"),
    [
        ("cycle,service,target_prefill\n0,a,1\n", None, "missing column(s) ['target_decode']"),
        ("cycle,service,target_prefill,target_decode\n0,a,-1,1\n", None, "negative targets"),
        (
            "cycle,service,target_prefill,target_decode\n0,a,1,1\n",
            "services: {b: {}}\n",
            "['b'] have no decisions",
        ),
        (
            "cycle,service,target_prefill,target_decode\n0,a,1,1\n",
            "default: {affinity: s3}\n",
            "affinity must be one of",
        ),
        (
            "cycle,service,target_prefill,target_decode\n0,a,1,1\n",
            "default: {colour: red}\n",
            "unknown key(s) ['colour']",
        ),
    ],
)
def test_bad_input_exits_non_zero_naming_the_file(tmp_path, capsys, content, needs, message):
    decisions = tmp_path / "d.csv"
    decisions.write_text(content)
    argv = ["--topology", str(SMALL_TOPOLOGY_PATH), "--decisions", str(decisions)]
    if needs is not None:
        (tmp_path / "n.yaml").write_text(needs)
        argv += ["--requirements", str(tmp_path / "n.yaml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert ("n.yaml" if needs is not None else "d.csv") in err


def test_missing_or_unsupported_files_exit_non_zero(tmp_path, capsys):
    assert main(["--topology", str(tmp_path / "none.yaml"), "--decisions", "x.csv"]) == 2
    assert "none.yaml" in capsys.readouterr().err
    assert main(["--topology", str(SMALL_TOPOLOGY_PATH), "--decisions", "x.txt"]) == 2
    assert "unsupported extension" in capsys.readouterr().err


def test_writes_the_whole_plan_as_json_records(tmp_path, capsys):
    decisions = tmp_path / "decisions.csv"
    DECISIONS.write_csv(decisions)
    plan_out = tmp_path / "plan.json"
    argv = ["--topology", str(DEFAULT_TOPOLOGY_PATH), "--decisions", str(decisions)]
    assert main([*argv, "--plan-out", str(plan_out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    plan = pl.read_json(plan_out)
    assert summary["plan_out"] == str(plan_out) and summary["plan_rows"] == plan.height > 0
    assert set(plan.columns) == set(PLAN_SCHEMA)
    # The records add up to what the summary says runs at the end (batch scales to zero).
    sign = pl.when(pl.col("action") == "scale_out").then(1).otherwise(-1)
    net = plan.group_by("service", "role").agg((sign * pl.col("instances")).sum().alias("net"))
    running = {(service, role): n for service, role, n in net.iter_rows() if n}
    assert running == {
        (r["service"], role): r[f"{role}_instances"]
        for r in summary["services"]
        for role in ("prefill", "decode")
        if r[f"{role}_instances"]
    }
    assert not list(tmp_path.glob("*.partial"))


def _scaling_decisions() -> pl.DataFrame:
    """Decisions as the pipeline stores them: the policy loop's role targets plus a service."""
    from datetime import UTC, datetime, timedelta

    from policies.loop import ROLE_TARGETS_SCHEMA

    start = datetime(2025, 3, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": [start + timedelta(minutes=m) for m in (0, 5, 9)],
            "current_prefill": [2, 3, 3],
            "current_decode": [4, 6, 5],
            "next_prefill": [3, 3, 2],
            "next_decode": [6, 5, 4],
            "reason": ["scale out", "scale in decode", "scale in"],
        },
        schema=ROLE_TARGETS_SCHEMA,
    ).with_columns(service=pl.lit("chat"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".duckdb"])
def test_accepts_scaling_decisions_as_the_pipeline_writes_them(tmp_path, capsys, suffix):
    decisions = tmp_path / f"scaling_decisions{suffix}"
    frame = _scaling_decisions()
    if suffix == ".duckdb":
        from telemetry.store import TelemetryStore

        TelemetryStore(decisions).write("scaling_decisions", frame, ("service",))
    else:
        {".csv": frame.write_csv, ".parquet": frame.write_parquet, ".json": frame.write_json}[
            suffix
        ](decisions)
    argv = ["--topology", str(DEFAULT_TOPOLOGY_PATH), "--decisions", str(decisions), "--json"]
    assert main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    # The starting deployment, then one cycle per decision; the last decision's counts run.
    assert summary["metrics"]["cycles"] == 4
    assert [
        (r["service"], r["prefill_instances"], r["decode_instances"]) for r in summary["services"]
    ] == [("chat", 2, 4)]


def test_a_store_without_decisions_is_a_clear_error(tmp_path, capsys):
    from telemetry.store import TelemetryStore

    store = tmp_path / "empty.duckdb"
    TelemetryStore(store).write("other", pl.DataFrame({"service": ["chat"]}), ("service",))
    argv = ["--topology", str(SMALL_TOPOLOGY_PATH), "--decisions", str(store)]
    assert main(argv) == 2
    assert "no scaling_decisions table" in capsys.readouterr().err
