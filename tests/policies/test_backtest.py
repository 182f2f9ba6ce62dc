"""run_backtest: decisions reach a simulated cluster through placement, and placement's KV
bandwidth reaches the simulated transfers."""

import polars as pl
import pytest

from policies import HOLD, SCALE_OUT, CoordinatedPolicyConfig
from policies.backtest import BACKTEST_DECISIONS_SCHEMA, run_backtest
from policies.evaluation import RUN_SUMMARY_SCHEMA, summarise_run
from scheduler import RoleRequirements, ServiceRequirements
from simulator import ClusterSpec, LifecycleSpec, PoolSpec, load_azure
from tests.scheduler.trees import build_tree

START_S, MINUTES = 1500.0, 6

#: A slow KV link (0.5 GB/s), so that a request's transfer, not its wait for the decode step
#: boundary, dominates the time from its first token to its decode start.
CLUSTER = ClusterSpec(
    model="Llama-3.1-8B",
    kv_transfer_gbps=0.5,
    prefill_pools=(PoolSpec("prefill", "L20", tp=1, count=1),),
    decode_pools=(PoolSpec("decode", "H20", tp=1, count=1),),
)

#: Prefill and decode nodes under one S2 switch: every Deployment Group keeps full bandwidth.
NEAR = build_tree({"s2": {"s1-p": ["L20"], "s1-d": ["H20"]}}, gpus_per_node=2)
#: Prefill and decode nodes under two S2 switches: a group must span them.
FAR = build_tree({"s2-p": {"s1-p": ["L20"]}, "s2-d": {"s1-d": ["H20"]}}, gpus_per_node=2)


def needs(affinity):
    return ServiceRequirements(
        prefill=RoleRequirements("L20"), decode=RoleRequirements("H20"), affinity=affinity
    )


@pytest.fixture(scope="module")
def trace():
    azure = load_azure()
    requests = azure.requests.filter(
        pl.col("arrival_s").is_between(START_S, START_S + 60 * MINUTES, closed="left")
    ).with_columns(pl.col("arrival_s") - START_S)
    return requests, azure.start


def backtest(trace, topology, affinity="s2", **config):
    requests, start = trace
    return run_backtest(
        requests,
        CLUSTER,
        # A target far below the load: the controller wants the most it may have, 2P + 2D.
        CoordinatedPolicyConfig(1.0, max_prefill=2, max_decode=2, **config),
        service="chat",
        start=start,
        topology=topology,
        requirements=needs(affinity),
        lifecycle=LifecycleSpec(default_startup_s=30.0),
    )


@pytest.fixture(scope="module")
def near(trace):
    return backtest(trace, NEAR)


@pytest.fixture(scope="module")
def far(trace):
    return backtest(trace, FAR, affinity="none")


def test_each_decision_is_placed_and_reaches_the_cluster(near):
    decisions = near.decisions
    assert decisions.schema == pl.Schema(BACKTEST_DECISIONS_SCHEMA)
    assert decisions.height == MINUTES - 1  # the last minute ends with the trace: no decision
    first = decisions.row(0, named=True)
    assert (first["action"], first["next_prefill"], first["next_decode"]) == (SCALE_OUT, 2, 2)
    assert decisions["action"].to_list()[1:] == [HOLD] * (MINUTES - 2)
    # The plan holds the starting cluster (cycle 0) and the scale-out of cycle 1.
    placed = (
        near.plan.group_by("cycle", "role").agg(pl.col("instances").sum()).sort("cycle", "role")
    )
    assert placed.rows() == [
        (0, "decode", 1),
        (0, "prefill", 1),
        (1, "decode", 1),
        (1, "prefill", 1),
    ]
    # The simulator ran the new instances: not ready during the startup delay, then ready.
    samples = near.run.instance_samples
    assert samples["instance_id"].n_unique() == 4
    new = samples.filter(pl.col("ts") >= samples["ts"].min() + pl.duration(seconds=60))
    ready_per_ts = new.group_by("ts").agg(pl.col("ready").sum()).sort("ts")["ready"].to_list()
    assert ready_per_ts[:2] == [2, 2]  # 60-90 s: the two new ones still start (30 s)
    assert ready_per_ts[2:] == [4] * (len(ready_per_ts) - 2)


def test_placement_across_switches_slows_the_new_instances_transfers(near, far):
    assert near.decisions["kv_bandwidth_factor"][0] == 1.0
    assert far.decisions["kv_bandwidth_factor"][0] == pytest.approx(0.8)
    assert near.plan.filter(~pl.col("affinity_satisfied")).is_empty()
    # Same requests, same routing: only the added instances' KV bandwidth differs. A request's
    # transfer ends when its decode starts; both runs start that clock at its first token.
    # Medians, since each gap also holds a wait for the next decode step boundary.
    columns = ["prefill_instance", "decode_instance", "first_token_s", "decode_start_s"]
    paired = pl.concat(
        [
            near.run.requests.select(columns),
            far.run.requests.select(columns).rename(lambda c: f"far_{c}"),
        ],
        how="horizontal",
    ).with_columns(
        ratio=(pl.col("far_decode_start_s") - pl.col("far_first_token_s"))
        / (pl.col("decode_start_s") - pl.col("first_token_s")),
        # The simulator names instances <role>-<GPU type>-<index>; index 0 started the run.
        starting=(pl.col("prefill_instance") == "prefill-L20-0")
        & (pl.col("decode_instance") == "decode-H20-0"),
    )
    assert (paired["prefill_instance"] == paired["far_prefill_instance"]).all()
    on_starting = paired.filter(pl.col("starting"))["ratio"]
    on_added = paired.filter(~pl.col("starting"))["ratio"]
    assert on_starting.median() == pytest.approx(1.0, abs=0.01)
    assert on_added.median() == pytest.approx(1 / 0.8, rel=0.05)


def test_summary_counts_gpu_hours_and_tails(near):
    summary = summarise_run(near.run.instance_samples, near.run.requests, label="near")
    assert summary.schema == pl.Schema(RUN_SUMMARY_SCHEMA)
    row = summary.row(0, named=True)
    samples = near.run.instance_samples
    gpu_hours = (samples["interval_s"] * samples["gpus_per_instance"]).sum() / 3600
    assert row["gpu_hours_prefill"] + row["gpu_hours_decode"] == pytest.approx(gpu_hours)
    assert 0 < row["gpu_util_prefill"] < 1 and 0 < row["gpu_util_decode"] <= 1
    assert row["requests"] == near.run.requests.height
    assert row["ttft_p99_s"] >= near.run.requests["ttft_s"].median()


def test_refuses_a_topology_that_cannot_host_the_starting_cluster(trace):
    h20_only = build_tree({"s2": {"s1": ["H20", "H20"]}}, gpus_per_node=2)
    with pytest.raises(ValueError, match="cannot host the starting cluster"):
        backtest(trace, h20_only)


def test_refuses_a_control_interval_off_the_telemetry_grid(trace):
    with pytest.raises(ValueError, match="multiple of interval_s"):
        backtest(trace, NEAR, control_interval_s=50.0)
