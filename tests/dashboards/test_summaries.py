"""The evidence pages in words: the controller, the signal scores, the placement, the
telemetry's gaps and unmeasured signals, and ingestion, each computed from its tables."""

import json
from datetime import UTC, date, datetime

import polars as pl

from dashboards import (
    controller_line,
    ingestion_lines,
    placement_lines,
    score_lines,
    telemetry_lines,
)
from telemetry.ingest.quarantine import QUARANTINE_SCHEMA, REASONS


def test_the_controller_line_counts_changes_by_direction(tables):
    decisions = tables["decisions"]
    line = controller_line(decisions)
    change = (pl.col("next_prefill") + pl.col("next_decode")) - (
        pl.col("current_prefill") + pl.col("current_decode")
    )
    outs, ins = (decisions.filter(keep).height for keep in (change > 0, change < 0))
    assert outs and ins
    assert line.startswith(f"Controller: {decisions.height} count changes over the evaluation days")
    assert f"{outs} scale-outs, {ins} scale-ins" in line
    decode = pl.concat([decisions["current_decode"], decisions["next_decode"]])
    assert f"decode {decode.min()} to {decode.max()} instances" in line


def test_score_lines_name_the_best_tracker_and_the_signal_unfit_to_scale_in(tables):
    lines = score_lines(tables["signal_scores"])
    decode = next(line for line in lines if line.startswith("svc decode:"))
    # Decode TPS is exactly proportional to load; decode GPU util sits near 0.88 throughout.
    assert decode.startswith("svc decode: decode_tps tracks offered load best (Pearson r = 1.00")
    assert "gpu_util_ratio gives up least at low load" in decode


#: The decisions behind the placement fixture's two cycles: the starting 2 prefill and 5
#: decode, then 2 decode at 01:00, held for an hour (the placement kept one more).
DECISIONS = pl.DataFrame(
    {
        "ts": [datetime(2025, 3, 1, h, tzinfo=UTC) for h in (1, 2)],
        "service": ["svc"] * 2,
        "current_prefill": [2, 2],
        "current_decode": [5, 2],
        "next_prefill": [2, 2],
        "next_decode": [2, 2],
    }
)


def test_placement_lines_sum_the_plan_and_the_outcomes(tables):
    lines = placement_lines(
        tables["placement"], tables["placement_outcomes"], DECISIONS, {"prefill": 4, "decode": 8}
    )
    assert lines[0] == (
        "Placement: 2 cycle(s) (cycle 0 places the starting cluster, each later one a decision "
        "of the policy): 6 instances placed, 2 removed, in 2 Deployment Group(s) across 2 S2 "
        "big-pod(s) and 2 S1 mini-pod(s)."
    )
    assert "Decode instances placed on L20 (4)." in lines
    assert "Prefill instances placed on H20 (2)." in lines
    assert "RDMA subgroups the scale-outs used: low priority 5 instances, medium priority 1 " in (
        " ".join(lines)
    )
    assert "Affinity: every instance lies inside its Deployment Group's domain." in lines
    assert lines[-3:-1] == [
        "Scale-out: 7 instances asked, 6 done, 1 short in 1 cycle(s).",
        "Scale-in: 3 instances asked, 2 done, 1 short in 1 cycle(s) (kept back to hold the P/D "
        "ratio).",
    ]
    # Cycle 1 holds 2 prefill and 2 decode (4 placed, 2 removed) for the hour it was asked.
    assert lines[-1].startswith(
        "GPU-hours from the first decision to the last: the placement ran 24 where the policy "
        "asked for 24 (+0.00%; decode 2 instance-hours against 2 asked (+0.0%); prefill 2 "
    )
    outside = tables["placement"].with_columns(affinity_satisfied=pl.Series([True, False] * 2))
    broken = placement_lines(
        outside, tables["placement_outcomes"], DECISIONS, {"prefill": 4, "decode": 8}
    )
    assert "Affinity: MISS: 5 instance(s) outside their Deployment Group's domain." in broken


def test_telemetry_without_gaps_says_so_and_lists_what_was_not_measured(tables):
    lines = telemetry_lines(tables["instance_samples"], tables["service_load"])
    assert lines[0].startswith(
        "Telemetry: 8 instances (4 decode, 4 prefill), 2025-03-01 00:00 to 2025-03-01 00:05 UTC "
        "at 15 s intervals: 192 instance samples and 24 intervals of offered load."
    )
    assert lines[1].startswith("Gaps: none. Each of the 8 instances reports every interval")
    # The fixture's decode pool reports TBT p99 only; TTFT is the prefill pool's to answer.
    assert "Decode instances: never measured: tbt_p50_s, tbt_p90_s." in lines
    assert "Prefill instances: never measured: ttft_p50_s, ttft_p90_s." in lines
    assert "Offered load: every signal measured in every interval." in lines


def test_gaps_name_the_instance_and_where_its_longest_gap_starts(tables):
    samples = tables["instance_samples"].with_row_index()
    instance = samples.filter(pl.col("role") == "decode")["instance_id"][0]
    # Four intervals missing after the 3rd sample, one after the 10th; another instance loses one.
    dropped = [3, 4, 5, 6, 11]
    mine = pl.col("instance_id") == instance
    ranks = pl.int_range(pl.len()).over("instance_id")
    other = samples.filter(~mine)["instance_id"][0]
    thinned = samples.filter(
        ~(mine & ranks.is_in(dropped)) & ~((pl.col("instance_id") == other) & (ranks == 20))
    ).drop("index")
    lines = telemetry_lines(thinned, tables["service_load"])
    start = samples["ts"].min()
    assert lines[1] == (
        "Gaps: MISSING 6 interval(s) in 3 gap(s) on 2 of 8 instances; the signal study and the "
        "backtest read those intervals as not measured."
    )
    assert lines[2] == (
        f"svc {instance}: 5 missing interval(s); the longest gap, 4 interval(s), after "
        f"{start.replace(second=30):%Y-%m-%d %H:%M:%S} UTC."
    )
    assert lines[3].startswith(f"svc {other}: 1 missing interval(s)")


def test_latency_missing_in_some_intervals_is_said_with_its_share(tables):
    samples = tables["instance_samples"].with_columns(
        tbt_p99_s=pl.when(pl.int_range(pl.len()) % 4 == 0).then(None).otherwise("tbt_p99_s")
    )
    decode = next(
        line
        for line in telemetry_lines(samples, tables["service_load"])
        if line.startswith("Decode")
    )
    assert "not measured in some intervals: tbt_p99_s (25.0% of intervals)" in decode
    assert decode.endswith("a latency is not measured in an interval that completed no request.")


def test_a_simulated_store_says_nothing_was_ingested():
    (line,) = ingestion_lines(
        service="svc", ingest_log=None, quarantine=None, service_load_origin=None
    )
    assert line.startswith("No telemetry was ingested into this store: the simulator produced it")


def test_an_ingested_store_accounts_for_every_row_and_quarantine_reason():
    log = pl.DataFrame(
        {
            "load_id": ["b", "a"],
            "sources": ["scrape-2.prom", "scrape-1.prom"],
            "loaded_at": [datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)],
            "rows_read": [10, 1_000],
            "rows_loaded": [10, 900],
            "rows_skipped": [0, 60],
            "rows_quarantined": [0, 40],
            "partitions": [1, 2],
            "notes": ["{}", json.dumps({"counter_gaps": 3})],
        }
    )
    quarantine = pl.DataFrame(
        {
            "source": ["scrape-1.prom"] * 3,
            "location": ["line 9", "line 4", "line 7"],
            "reason": ["truncated", "negative_value", "negative_value"],
            "detail": ["ends mid-line", "-1 on gpu_util", "-3 on gpu_util"],
            "raw": [None] * 3,
            "rows": [1, 30, 9],
        },
        schema=QUARANTINE_SCHEMA,
    )
    origin = pl.DataFrame(
        {
            "service": ["svc", "svc", "other"],
            "day": [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)],
            "origin": ["measured", "derived", "derived"],
            "load_id": ["a", "b", "b"],
        }
    )
    lines = ingestion_lines(
        service="svc", ingest_log=log, quarantine=quarantine, service_load_origin=origin
    )
    assert lines[0] == (
        "Load a at 2025-03-01 00:00 UTC from scrape-1.prom: 1,000 rows read = 900 loaded + 60 "
        "skipped (metrics heteroscale reads no signal from) + 40 quarantined; 2 partition(s) "
        "written; notes: counter_gaps: 3."
    )
    assert lines[1].startswith("Load b at 2025-03-02 00:00 UTC from scrape-2.prom: 10 rows read")
    assert lines[2] == (
        "Quarantined for negative_value: 39 row(s) at 2 place(s), first scrape-1.prom line 4 "
        f"(-1 on gpu_util); {REASONS['negative_value']}."
    )
    assert lines[3].startswith("Quarantined for truncated: 1 row(s) at 1 place(s)")
    assert lines[4].startswith("Offered load not measured on 2025-03-02: no frontend counters")
    assert len(lines) == 5
    clean = ingestion_lines(
        service="svc", ingest_log=log, quarantine=quarantine.clear(), service_load_origin=None
    )
    assert clean[2:] == ["Quarantine: empty; every row read was loaded or skipped."]
