"""Advisory mode: the published policy replayed open loop on recorded telemetry, read-only."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from heteroscale.cli import main
from policies.advise import ADVICE_SCHEMA, advise
from policies.gate import Verdict
from policies.heteroscale import HeteroScaleConfig
from policies.slo import ServiceSLO
from policies.spec import Pairing, PolicySpec, Pool, Provenance, dump
from telemetry.store import TableWrite, TelemetryStore
from tests.canonical_frames import START, instance_samples, service_load

#: GPUs per instance of each role's pool (different, so the per-role arithmetic shows).
GPUS = {"prefill": 2, "decode": 4}
#: HeteroScale sizes at 200 x 0.8 = 160 decode tok/s per instance, P:D 1.
PER_INSTANCE = 160.0
#: Intervals a 120 s startup spans at 15 s: how far back an early warning looks.
LEAD = 8


def make_spec(*, passed: bool = True, service: str = "svc") -> PolicySpec:
    return PolicySpec(
        service=service,
        policy="heteroscale",
        signal="decode_tps",
        decode_tps_per_instance=200.0,
        pd_ratio=1.0,
        control_interval_s=15.0,
        pools=(
            Pool("prefill", "L20", GPUS["prefill"], 1000.0, 1, 512),
            Pool("decode", "H20", GPUS["decode"], 1000.0, 1, 512),
        ),
        pairings=(Pairing("L20", GPUS["prefill"], "H20", GPUS["decode"], 1.0),),
        controller=HeteroScaleConfig(),
        slo=ServiceSLO(ttft_p99_s=6.0, tbt_p99_s=0.1),
        validation=Verdict(
            passed=passed,
            reasons=("hand-made",),
            policy="heteroscale",
            slo_attainment_target=0.99,
            ttft_attainment=0.995 if passed else 0.9,
            tbt_attainment=0.999,
            gpu_hours=10.0,
            static_peak_gpu_hours=20.0,
        ),
        provenance=Provenance(
            curation_run=None,
            trace="hand-made",
            curation_start=datetime(2025, 1, 1, tzinfo=UTC),
            evaluation_start=datetime(2025, 1, 8, tzinfo=UTC),
            evaluation_end=datetime(2025, 1, 15, tzinfo=UTC),
            curation_met_objective=True,
            sources={},
        ),
    )


def cluster(
    decode_tps: list[float],
    *,
    tbt: float | list[float] = 0.05,
    ttft: float | list[float] = 1.0,
    prefill: int = 2,
    decode: int = 2,
    prefill_ready: bool | list[bool] = True,
    prefill_gpu: str = "L20",
) -> pl.DataFrame:
    """Recorded samples of ``prefill`` L20 and ``decode`` H20 instances; ``decode_tps`` per
    decode instance per interval."""
    intervals = len(decode_tps)
    return pl.concat(
        [
            instance_samples(
                role="prefill",
                instances=prefill,
                intervals=intervals,
                gpu_type=prefill_gpu,
                ready=prefill_ready,
                ttft_p99_s=ttft,
            ).with_columns(gpus_per_instance=pl.lit(GPUS["prefill"], pl.Int64)),
            instance_samples(
                role="decode",
                instances=decode,
                intervals=intervals,
                decode_tps=decode_tps,
                tbt_p99_s=tbt,
            ).with_columns(gpus_per_instance=pl.lit(GPUS["decode"], pl.Int64)),
        ]
    )


def load_rise() -> tuple[list[float], list[float], list[float]]:
    """60 intervals on 2 + 2 instances: decode load in the band (4 instances' worth), doubling
    over intervals 10-24; TBT over its SLO in 20-29 (the rise's breach) and again at 33 (the
    same episode: the policy's answer to the first is no warning of it), TTFT over its SLO in
    50-52 with nothing ahead of it (steady load)."""
    decode_tps = [2 * PER_INSTANCE] * 60
    decode_tps[10:25] = [4 * PER_INSTANCE] * 15
    tbt = [0.05] * 60
    tbt[20:30] = [0.2] * 10
    tbt[33] = 0.2
    ttft = [1.0] * 60
    ttft[50:53] = [8.0] * 3
    return decode_tps, tbt, ttft


def test_gpu_hours_count_ready_and_starting_instances_as_run_and_as_advised():
    # 2 prefill ready + 1 starting throughout, 2 decode; the policy holds (instances start)
    samples = cluster([2 * PER_INSTANCE] * 40, prefill=3, prefill_ready=[True, True, False])
    frame, summary = advise(samples, None, make_spec())
    assert frame.height == summary.intervals == 40
    assert frame["prefill_ready"].unique().to_list() == [2]
    assert frame["prefill_starting"].unique().to_list() == [1]
    # 40 intervals x (3 x 2 + 2 x 4 GPUs) x 15 s
    assert summary.gpu_hours_actual == pytest.approx(40 * 14 * 15 / 3600)
    by_role = {r.role: r for r in summary.per_role}
    assert by_role["prefill"].gpu_hours_actual == pytest.approx(40 * 6 * 15 / 3600)
    assert by_role["decode"].gpu_hours_actual == pytest.approx(40 * 8 * 15 / 3600)
    advised = (frame["prefill_advised"] * 2 + frame["decode_advised"] * 4).sum() * 15 / 3600
    assert summary.gpu_hours_advised == pytest.approx(advised)
    assert summary.gpu_hours_difference == pytest.approx(advised - summary.gpu_hours_actual)
    assert (frame["gpus_actual"] == 14).all()


def test_a_load_rise_is_advised_ahead_of_the_breach_it_causes():
    decode_tps, tbt, ttft = load_rise()
    frame, summary = advise(
        cluster(decode_tps, tbt=tbt, ttft=ttft), service_load(decode_tps), make_spec()
    )
    assert list(frame.schema) == list(ADVICE_SCHEMA)
    rows = frame.with_row_index("t")
    ran = rows["prefill_ready"] + rows["decode_ready"]
    ahead = rows.filter(rows["prefill_advised"] + rows["decode_advised"] > ran)
    # the rise (interval 10) is seen a 30 s lag later: 8 instances, 4 per role at P:D 1
    first = ahead.row(0, named=True)
    assert first["t"] == 12
    assert (first["prefill_advised"], first["decode_advised"]) == (4, 4)
    assert first["reason"].startswith("scale out: decode 1,280 tok/s")
    assert summary.breach_intervals == 14 and summary.breaches == 2
    assert summary.lead_intervals == LEAD
    assert summary.early_warnings == 1
    assert rows.filter("early_warning")["t"].to_list() == [20]
    # latency feedback on the first breach advised more just before 33, within one episode
    assert ahead.filter(pl.col("t").is_between(33 - LEAD, 32)).height > 0
    # the TTFT breach at 50 came with no advice in the 8 intervals before it
    assert (
        rows.filter(pl.col("t").is_between(50 - LEAD, 49))["reason"].str.starts_with("hold").all()
    )
    assert summary.gpu_hours_difference > 0


def test_a_shorter_startup_narrows_the_lead_and_can_miss_the_warning():
    decode_tps, tbt, ttft = load_rise()
    _, summary = advise(cluster(decode_tps, tbt=tbt, ttft=ttft), None, make_spec(), startup_s=60)
    # 4 intervals before 20 are 16-19; the scale-out advice came at 12, 14, 16 and 18
    assert summary.lead_intervals == 4 and summary.early_warnings == 1
    _, summary = advise(cluster(decode_tps, tbt=tbt, ttft=ttft), None, make_spec(), startup_s=15)
    assert summary.lead_intervals == 1 and summary.early_warnings == 0


def test_telemetry_on_other_hardware_is_refused():
    samples = cluster([2 * PER_INSTANCE] * 4, prefill_gpu="H100")
    with pytest.raises(ValueError, match="curated for prefill L20 x2, decode H20 x4"):
        advise(samples, None, make_spec())


def test_an_interval_with_no_samples_is_skipped_and_its_window_has_no_metrics():
    samples = cluster([2 * PER_INSTANCE] * 20)
    gap = START + timedelta(seconds=15 * 10)
    frame, summary = advise(samples.filter(pl.col("ts") != gap), None, make_spec())
    assert summary.missing_intervals == 1 and summary.intervals == 19
    assert gap not in frame["ts"].to_list()
    # seen two intervals late, the gap leaves the decision at 12 blind
    at_12 = frame.filter(pl.col("ts") == START + timedelta(seconds=15 * 12))
    assert at_12["reason"].item() == "hold: metrics missing or stale"


# The command


def store_with(path, samples, *, spec: PolicySpec | None = None, load=None) -> TelemetryStore:
    store = TelemetryStore(path)
    writes = [TableWrite("instance_samples", samples)]
    if load is not None:
        writes.append(TableWrite("service_load", load))
    if spec is not None:
        published = pl.DataFrame(
            {
                "service": [spec.service],
                "passed": [spec.validation.passed],
                "spec_yaml": [dump(spec)],
            }
        )
        writes.append(TableWrite("policy_spec", published, ("service",)))
    store.write_many(writes)
    return store


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def recorded(tmp_path):
    decode_tps, tbt, ttft = load_rise()
    db = tmp_path / "store.duckdb"
    store_with(
        db,
        cluster(decode_tps, tbt=tbt, ttft=ttft),
        spec=make_spec(),
        load=service_load(decode_tps),
    )
    return db


def test_the_json_report_and_a_read_only_store(recorded, capsys):
    before, files = digest(recorded), sorted(recorded.parent.iterdir())
    assert main(["advise", "--db", str(recorded), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert digest(recorded) == before and sorted(recorded.parent.iterdir()) == files
    assert report["service"] == "svc" and report["intervals"] == 60
    assert report["early_warnings"] == 1 and report["gate_passed"] is True
    assert report["gpu_hours_difference"] == pytest.approx(
        report["gpu_hours_advised"] - report["gpu_hours_actual"]
    )
    assert [r["role"] for r in report["per_role"]] == ["prefill", "decode"]
    assert sum(r["gpu_hours_actual"] for r in report["per_role"]) == pytest.approx(
        report["gpu_hours_actual"]
    )
    rows = report["per_interval"]
    assert len(rows) == 60 and list(rows[0]) == list(ADVICE_SCHEMA)
    assert rows[0]["ts"] == START.isoformat() and rows[0]["tbt_p99_s"] == 0.05
    assert rows[0]["ttft_p99_s"] == 1.0 and rows[20]["early_warning"] is True


def test_since_and_the_per_interval_file(recorded, tmp_path, capsys):
    out = tmp_path / "per-interval.csv"
    since = (START + timedelta(seconds=15 * 30)).isoformat()
    argv = ["advise", "--db", str(recorded), "--since", since, "--per-interval-out", str(out)]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intervals"] == 30 and "per_interval" not in report
    assert report["per_interval_file"] == str(out)
    assert pl.read_csv(out).height == 30
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("svc: 30 intervals of 15 s") and "nothing was scaled" in text


def test_a_spec_that_failed_its_gate_is_replayed_and_flagged(tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    store_with(db, cluster([2 * PER_INSTANCE] * 10), spec=make_spec(passed=False))
    assert main(["advise", "--db", str(db), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["gate_passed"] is False
    assert "warning: heteroscale failed the publication gate" in captured.err


def test_a_spec_file_replays_another_services_telemetry(tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    store_with(db, cluster([2 * PER_INSTANCE] * 10))
    spec = tmp_path / "policy-spec.yaml"
    spec.write_text(dump(make_spec(service="chat")))
    argv = ["advise", "--db", str(db), "--spec", str(spec), "--json"]
    assert main(argv) == 2
    assert "no telemetry for service 'chat'" in capsys.readouterr().err
    assert main([*argv, "--service", "svc"]) == 0
    assert json.loads(capsys.readouterr().out)["intervals"] == 10


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no store", "no store at"),
        ("no spec", "no published policy spec in"),
        ("no telemetry", "no telemetry for service 'svc'"),
        ("other hardware", "replayed only on the hardware it was curated for"),
        ("nothing since", "no telemetry for service 'svc' since"),
    ],
)
def test_errors_are_one_line_and_exit_2(case, message, tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    samples = cluster([2 * PER_INSTANCE] * 10)
    argv = ["advise", "--db", str(db)]
    if case == "no spec":
        store_with(db, samples)
    elif case == "no telemetry":
        store_with(db, samples.with_columns(service=pl.lit("other")), spec=make_spec())
    elif case == "other hardware":
        store_with(db, cluster([2 * PER_INSTANCE] * 10, prefill_gpu="H100"), spec=make_spec())
    elif case == "nothing since":
        store_with(db, samples, spec=make_spec())
        argv += ["--since", "2030-01-01"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("heteroscale advise: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    if case == "no spec":
        assert "heteroscale run" in err
    if case == "no store":
        assert not db.exists()
