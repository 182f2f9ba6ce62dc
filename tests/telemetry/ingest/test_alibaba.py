"""Real production telemetry (Alibaba GenTD26) through the generic file reader and a mapping.

The dataset has no explicit licence, so it is not shipped: the test runs only where
``HETEROSCALE_ALIBABA_DIR`` names a folder holding ``pod_gpu_duty_cycle_anon.csv.gz`` and
``qps.csv.gz`` (docs/ingest.md). The dataset's own description puts the correlation of mean
pod GPU duty with generative QPS at 0.97 in 10-minute bins; the signal study must find it too.
"""

import os
from pathlib import Path

import pytest

from signals import score_signals
from telemetry.ingest import ingest, load_mapping

MAPPING = Path(__file__).parents[3] / "telemetry" / "ingest" / "mappings" / "alibaba_gentd26.yaml"
FILES = ("pod_gpu_duty_cycle_anon.csv.gz", "qps.csv.gz")

pytestmark = pytest.mark.skipif(
    not os.environ.get("HETEROSCALE_ALIBABA_DIR"),
    reason="set HETEROSCALE_ALIBABA_DIR to the GenTD26 folder to run (data not shipped)",
)


def test_gpu_duty_tracks_qps_at_ten_minute_bins(store):
    folder = Path(os.environ["HETEROSCALE_ALIBABA_DIR"])
    report = ingest([str(folder / f) for f in FILES], store, mapping=load_mapping(MAPPING))
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    assert report.rows_loaded > 150_000
    instances = store.read("instance_samples").drop("day")
    load = store.read("service_load").drop("day")
    assert instances["instance_id"].n_unique() >= 100
    scores = score_signals(instances, load, load_column="request_rate_rps", window_s=600)
    duty = scores.filter(scores["signal"] == "gpu_util_ratio").row(0, named=True)
    assert duty["n_intervals"] >= 100
    assert duty["pearson_r"] > 0.9
