"""The exported rules run for real: a real Prometheus scrapes ``heteroscale simulate --policy
--serve`` while a load swing replays, evaluates the exported recording rules, and records per
role the replicas the policy itself asked for in the same windows, within one instance, with
the P/D ratio kept.

The simulated cluster is scaled by the policy (as the autoscalers following the recorded
series would scale a real one); Prometheus sees it only through the endpoint's vLLM and
kube-state-metrics series. The two observe through different windows (the policy a 15 s window
30 s late, the rules a one-minute ``rate()``), so they are compared where the load has been
steady for both; and the rules see a scale action only when the served cluster shows it, one
telemetry interval after the policy took it, so their cool-downs end up to 30 s later: the
rules must match one of the policy's decisions of the last 30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from policies.exporters import ClusterBinding, render
from policies.exporters.prometheus_rules import DESIRED
from policies.heteroscale import HeteroScaleConfig
from policies.spec import dump
from simulator.prometheus_endpoint import NAMESPACE
from telemetry.store import TelemetryStore
from tests.policies.test_spec import make_spec, policy_inputs
from tests.prometheus_server import running_prometheus

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 5, 1, tzinfo=UTC)
#: (seconds, requests/s): high, low, higher again. Prompts of 100-200 tokens and outputs of
#: 300-600 keep prefill from saturating; the last step stays within what the decode pool left
#: by the scale-in serves, so the decode tokens served are the tokens offered throughout.
PHASES = ((120, 24.0), (165, 6.0), (135, 8.0))
#: What the rules carry (docs/deploy.md): the proportional core with its band, cool-downs,
#: damping and bounds. Latency tiers, the scale-in guard and soft scale-in are not in them,
#: so the policy under test has them off (tiers and guard at 100 x the SLO).
CONFIG = HeteroScaleConfig(
    utilisation_target=0.8,
    scale_out_cooldown_s=30.0,
    scale_in_cooldown_s=60.0,
    scale_out_step=1.0,
    scale_in_step=0.5,
    moderate=100.0,
    severe=100.0,
    scale_in_guard=100.0,
    soft_scale_in_s=0.0,
)
#: At 24 requests/s the decode pool generates ~10,800 tok/s: 20 instances at 540 per
#: instance, 12 prefill and 8 decode at P:D 1.5; at 6 requests/s 5, at 8 requests/s 7.
CLUSTER = """model: Llama-3.1-70B
prefill_pools: [{gpu_type: L20, tp: 4, count: 12}]
decode_pools: [{gpu_type: H20, tp: 4, count: 8}]
"""
#: Seconds of one phase's load after which both sides observe only it: the rules' one-minute
#: ``rate()`` plus the policy's window, 30 s late.
STEADY_S = 90.0
#: The rules' ``rate()`` window.
RATE_WINDOW_S = 60.0
#: The served run's pods are in the simulator's namespace.
BINDING = ClusterBinding(namespace=NAMESPACE)
#: Set in CI: a missing Prometheus fails instead of skipping.
REQUIRE_ENV = "HETEROSCALE_REQUIRE_PROMETHEUS"


@pytest.fixture(scope="module")
def prometheus_binaries() -> None:
    if any(shutil.which(b) is None for b in ("prometheus", "promtool")):
        message = "needs Debian's prometheus package (.ci/run installs it)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_the_recorded_replicas_are_the_policys_decisions(prometheus_binaries, tmp_path):
    spec = make_spec(inputs=policy_inputs(pd_ratio=1.5, m=675.0), config=CONFIG)
    (tmp_path / "policy.yaml").write_text(dump(spec))
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    (tmp_path / "swing.csv").write_text(swing_trace())
    rules = render(spec, "prometheus-rules", BINDING)["heteroscale.rules.yaml"]
    (tmp_path / "heteroscale.rules.yaml").write_text(rules)
    served = subprocess.Popen(
        [
            *(sys.executable, "-m", "heteroscale", "simulate"),
            *("--trace", str(tmp_path / "swing.csv"), "--cluster", str(tmp_path / "cluster.yaml")),
            *("--policy", str(tmp_path / "policy.yaml"), "--startup-s", "30"),
            *("--out", str(tmp_path / "run.duckdb"), "--serve", "127.0.0.1:0", "--json"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "simulate.log").open("w"),
        text=True,
    )
    try:
        line = served.stdout.readline()
        assert line, (tmp_path / "simulate.log").read_text()[-2000:]
        summary = json.loads(line)
        serving_since = time.time()  # the endpoint's simulated clock started just before
        target = summary["metrics_url"].removeprefix("http://").removesuffix("/metrics")
        config = (
            "global: {scrape_interval: 5s, evaluation_interval: 15s}\n"
            f"rule_files: ['{tmp_path / 'heteroscale.rules.yaml'}']\n"
            f"scrape_configs: [{{job_name: sim, static_configs: [{{targets: ['{target}']}}]}}]\n"
        )
        span_s = sum(seconds for seconds, _ in PHASES)
        with running_prometheus(tmp_path, config) as url:
            time.sleep(max(0.0, serving_since + span_s - time.time()))
            recorded = recorded_replicas(url, span_s + 60)
            first_scrape = first_scrape_at(url, span_s + 60)
    finally:
        served.terminate()
        served.wait(timeout=30)
    recorded = recorded.with_columns(t_s=pl.col("at") - serving_since).filter(
        pl.col("t_s") <= span_s
    )
    assert recorded.height >= span_s // 15 - 2  # one evaluation every control interval
    store = TelemetryStore(tmp_path / "run.duckdb")
    decisions = store.read("scaling_decisions")
    zero = store.read("service_load")["ts"].min()  # the served clock's zero: the trace's start
    # A one-minute rate() needs a minute of scrapes: Prometheus starts after the endpoint, and
    # later on a busy machine.
    scraped = pl.col("at") >= first_scrape + RATE_WINDOW_S
    steady = recorded.filter(steady_for(recorded["t_s"], STEADY_S) & scraped)
    assert steady.height >= 8
    for row in steady.iter_rows(named=True):
        rules = (row["prefill_rules"], row["decode_rules"])
        at = zero + timedelta(seconds=row["t_s"])
        policy = [policy_replicas(decisions, at - timedelta(seconds=s)) for s in (0, 15, 30)]
        assert any(abs(rules[0] - p[0]) <= 1 and abs(rules[1] - p[1]) <= 1 for p in policy), (
            f"at {row['t_s']:.0f} s the rules want {rules}, the policy {policy}"
        )
    # The ratio holds in every recorded window: prefill is the 1.5 / 2.5 share, rounded.
    total = recorded["prefill_rules"] + recorded["decode_rules"]
    assert (recorded["prefill_rules"] == (total * 1.5 / 2.5).round().cast(pl.Int64)).all()
    # The swing made the rules scale both ways.
    steps = recorded["prefill_rules"].diff().drop_nulls()
    assert (steps > 0).any() and (steps < 0).any()


def swing_trace(seed: int = 7) -> str:
    """Azure-format requests: Poisson arrivals at each phase's rate."""
    rng = np.random.default_rng(seed)
    lines, t, end = ["TIMESTAMP,ContextTokens,GeneratedTokens"], 0.0, 0.0
    for seconds, rate in PHASES:
        end += seconds
        while (t := t + rng.exponential(1 / rate)) < end:
            at = START + timedelta(seconds=t)
            lines.append(
                f"{at:%Y-%m-%d %H:%M:%S.%f}0,{rng.integers(100, 200)},{rng.integers(300, 600)}"
            )
        t = end
    return "\n".join(lines) + "\n"


def recorded_replicas(url: str, range_s: float) -> pl.DataFrame:
    """Every evaluation of the desired replicas: ``at`` (Unix s), ``prefill_rules``,
    ``decode_rules``."""
    series = query(url, f"{DESIRED}[{int(range_s)}s]")
    frames = [
        pl.DataFrame(
            {
                "at": [float(at) for at, _ in s["values"]],
                f"{s['metric']['role']}_rules": [int(float(v)) for _, v in s["values"]],
            }
        )
        for s in series
    ]
    assert len(frames) == 2, series
    return frames[0].join(frames[1], on="at")


def first_scrape_at(url: str, range_s: float) -> float:
    """When Prometheus first scraped the endpoint (Unix s)."""
    (series,) = query(url, f'up{{job="sim"}}[{int(range_s)}s]')
    return float(series["values"][0][0])


def query(url: str, expression: str) -> list[dict]:
    """The result of an instant query (a range selector gives each series' samples)."""
    import urllib.parse
    import urllib.request

    encoded = urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(f"{url}/api/v1/query?{encoded}", timeout=10) as response:
        return json.loads(response.read())["data"]["result"]


def policy_replicas(decisions: pl.DataFrame, at: datetime) -> tuple[int, int]:
    """Prefill and decode replicas the policy's latest decision by ``at`` asked for; the
    starting cluster's before its first."""
    log = decisions.sort("ts")
    made = log.filter(pl.col("ts") <= at)
    if made.is_empty():
        return log["current_prefill"][0], log["current_decode"][0]
    return made["next_prefill"][-1], made["next_decode"][-1]


def steady_for(t_s: pl.Series, seconds: float) -> pl.Series:
    """Whether the offered load was one phase's throughout the ``seconds`` before each
    instant."""
    edges = np.cumsum([0, *(s for s, _ in PHASES)])
    t = t_s.to_numpy()
    phase_start = edges[np.searchsorted(edges, t, side="right") - 1]
    return pl.Series(t - phase_start >= seconds)
