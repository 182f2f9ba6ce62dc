"""Raw scrapes of a real vLLM 0.11 + DCGM exporter deployment (every series they emit by
default; :mod:`tests.telemetry.ingest.scrape_fixture`) load on the first try: with no flag
beyond the folder's name, nothing quarantined, every unused series skipped by name."""

import argparse
import json

import pytest

from heteroscale.commands import ingest as ingest_command
from telemetry.store import TelemetryStore
from tests.prometheus_server import DEFAULT_SERIES_LINTS, needs_prometheus, promtool_check_metrics
from tests.telemetry.ingest import scrape_fixture

FOLDER = scrape_fixture.FOLDER


def test_the_committed_scrapes_are_what_the_fixture_writes():
    written = {p.name: p.read_text() for p in FOLDER.glob("*.prom")}
    assert written == scrape_fixture.scrapes()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``heteroscale ingest FOLDER --json`` (no other flag), its report and its store."""
    db = tmp_path_factory.mktemp("store") / "store.duckdb"
    parser = argparse.ArgumentParser(prog="heteroscale")
    ingest_command.register(parser.add_subparsers(dest="command"))
    # No --service, --mapping or --interval: only where the store goes, and the JSON report.
    args = parser.parse_args(["ingest", str(FOLDER), "--db", str(db), "--json"])
    return args, TelemetryStore(db)


def test_they_load_with_nothing_quarantined(loaded, capsys):
    args, store = loaded
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_quarantined"] == 0 and report["quarantine_reasons"] == {}
    assert report["rows_read"] == report["rows_loaded"] + report["rows_skipped"]
    # Two pods, three complete intervals each; their last scrape's interval lacks its rates.
    samples = store.read("instance_samples")
    assert samples.height == 6
    assert set(samples["service"]) == {scrape_fixture.MODEL}
    assert set(samples["instance_id"]) == set(scrape_fixture.PODS)
    assert set(samples["role"]) == {"colocated"} and "role" in report["notes"]
    assert set(samples["gpu_type"]) == {"H100"} and set(samples["gpus_per_instance"]) == {2}
    assert samples["gpu_util_ratio"].is_between(0.84, 0.98).all()
    assert samples["ttft_p50_s"].is_not_null().all() and samples["tbt_p99_s"].is_not_null().all()
    assert report["notes"]["not_measured"] == ["sm_active_ratio"]  # off in DCGM's defaults
    # What the study needs and the deployment lacks is said, not guessed silently.
    assert "derived from served work" in report["notes"]["service_load"][scrape_fixture.MODEL]
    assert store.read("service_load").height == 3
    assert store.read("service_load_origin")["origin"].to_list() == ["derived"]
    skipped = report["skipped"]
    assert set(skipped) == {
        "unused_metric",
        "histogram_sum_count",
        "superseded_metric",
        "gpu_without_pod",
        "edge_interval",
    }
    names = report["skipped_metrics"]
    assert names["vllm:time_per_output_token_seconds_bucket"] == 2 * 4 * 20  # deprecated name
    assert names["DCGM_FI_DEV_GPU_UTIL"] == 4 * 4  # the four GPUs no pod holds
    for unused in (
        "python_gc_collections_total",
        "vllm:prompt_tokens_created",
        "DCGM_FI_DEV_FB_USED",
    ):
        assert names[unused] > 0, unused


@needs_prometheus
def test_promtool_accepts_every_scrape():
    for path in sorted(FOLDER.glob("*.prom")):
        assert promtool_check_metrics(path.read_text(), DEFAULT_SERIES_LINTS) == [], path.name
