"""Exposition text: the writer and the parser round-trip, and the semantics PromQL has."""

from datetime import timedelta

import polars as pl
import pytest
from numpy.testing import assert_allclose

from telemetry.ingest import prepare
from telemetry.ingest.exposition import parse, parse_bytes, parse_file, write_openmetrics
from telemetry.ingest.exposition.parse import LINE_READER_FROM_BYTES, RawSamples, _last_lines
from tests.telemetry.ingest.frames import NOW, START, source_frames

RATES = ("prefill_tps_total", "prefill_tps_cache_missed", "decode_tps")
GAUGES = ("gpu_util_ratio", "sm_active_ratio", "queue_depth", "running_requests", "kv_usage_ratio")


def _load(tmp_path, text, name="scrape.om"):
    path = tmp_path / name
    path.write_text(text)
    return prepare([str(path)], now=NOW)


def test_written_exposition_reads_back_exactly(tmp_path):
    instances, load = source_frames(intervals=12)
    prepared = _load(tmp_path, write_openmetrics(instances, load))
    got = prepared.canonical.instance_samples
    paired = instances.join(got, on=["instance_id", "ts"], suffix="_got")
    assert paired.height == instances.height == got.height
    for column in (*RATES, *GAUGES):
        assert_allclose(paired[f"{column}_got"], paired[column], rtol=1e-9, err_msg=column)
    for column in ("role", "gpu_type", "gpus_per_instance", "ready"):
        assert paired[f"{column}_got"].to_list() == paired[column].to_list(), column
    # Quantiles are interpolated inside the writer's 10 % buckets.
    for column in ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tbt_p50_s", "tbt_p99_s"):
        both = paired.filter(pl.col(column).is_not_null())
        assert_allclose(both[f"{column}_got"], both[column], rtol=0.1, atol=1e-4)
    served = prepared.canonical.service_load.sort("ts")
    assert_allclose(served["output_tps"], load["output_tps"], rtol=1e-9)
    # The histograms' _count and _sum are not read: skipped by name, nothing is quarantined.
    assert prepared.canonical.quarantine.height == 0
    aside = prepared.canonical.skipped
    assert set(aside["reason"]) == {"histogram_sum_count", "unused_metric"}
    assert "vllm:time_to_first_token_seconds_count" in set(aside["metric"])
    # The Dynamo frontend's token histograms are read through their _sum only.
    unused = aside.filter(pl.col("reason") == "unused_metric")
    assert set(unused["metric"]) == {
        f"dynamo_frontend_{side}_sequence_tokens_{part}"
        for side in ("input", "output")
        for part in ("bucket", "count")
    }


def _counter(values, times, labels='pod="p0",role="decode",service="chat"'):
    start = START.timestamp()
    return [
        f"vllm:generation_tokens_total{{{labels}}} {v} {start + t}"
        for v, t in zip(values, times, strict=True)
    ]


def _gauge(times, value=50, labels='pod="p0",gpu="0",modelName="NVIDIA H100 80GB HBM3"'):
    start = START.timestamp()
    return [f'DCGM_FI_DEV_GPU_UTIL{{{labels},service="chat"}} {value} {start + t}' for t in times]


def test_a_counter_reset_counts_the_new_value_as_the_increase(tmp_path):
    lines = _counter([0, 300, 30, 330], [0, 15, 30, 45]) + _gauge([7.5, 22.5, 37.5])
    prepared = _load(tmp_path, "\n".join([*lines, "# EOF"]) + "\n")
    got = prepared.canonical.instance_samples.sort("ts")
    assert got["decode_tps"].to_list() == pytest.approx([20.0, 2.0, 20.0])
    assert prepared.canonical.notes["counter_resets"] == 1


def test_per_gpu_series_average_to_the_pod_and_count_its_gpus(tmp_path):
    lines = _counter([0, 150], [0, 15])
    for gpu, util in (("0", 20), ("1", 40), ("2", 90)):
        lines += _gauge([7.5], util, f'pod="p0",gpu="{gpu}",modelName="NVIDIA H100 80GB HBM3"')
    got = _load(tmp_path, "\n".join([*lines, "# EOF"]) + "\n").canonical.instance_samples
    assert got.select("gpu_util_ratio", "gpus_per_instance", "gpu_type").row(0) == (
        pytest.approx(0.5),
        3,
        "H100",
    )


def test_the_deprecated_name_is_read_only_where_the_current_one_is_absent(tmp_path):
    start = START.timestamp()
    lines = (
        _counter([0, 150], [0, 15])
        + _gauge([7.5])
        + _counter([0, 150], [0, 15], 'pod="p1",role="decode",service="chat"')
        + _gauge([7.5], labels='pod="p1",gpu="0",modelName="NVIDIA H20"')
    )
    lines += [
        f'vllm:kv_cache_usage_perc{{pod="p0",service="chat"}} 0.5 {start + 7.5}',
        f'vllm:gpu_cache_usage_perc{{pod="p0",service="chat"}} 0.9 {start + 7.5}',
        f'vllm:gpu_cache_usage_perc{{pod="p1",service="chat"}} 0.3 {start + 7.5}',
    ]
    prepared = _load(tmp_path, "\n".join([*lines, "# EOF"]) + "\n")
    got = prepared.canonical.instance_samples.sort("instance_id")
    assert got["kv_usage_ratio"].to_list() == [0.5, 0.3]
    assert prepared.canonical.quarantine.height == 0
    aside = prepared.canonical.skipped
    assert aside.select("reason", "metric", "rows").rows() == [
        ("superseded_metric", "vllm:gpu_cache_usage_perc", 1)
    ]


def test_a_directory_of_scrapes_takes_time_and_target_from_file_names(tmp_path):
    scrapes = tmp_path / "inbox"
    scrapes.mkdir()
    for i, tokens in enumerate((0, 150, 450)):
        at = START + timedelta(seconds=15 * i)
        (scrapes / f"p0-{int(at.timestamp())}.prom").write_text(
            f'vllm:generation_tokens_total{{role="decode",service="chat"}} {tokens}\n'
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",modelName="NVIDIA H20",service="chat"}} 10\n'
        )
    got = prepare([str(scrapes)], now=NOW, interval_s=15.0).canonical.instance_samples
    # Scrapes at interval boundaries: each increase lands in the interval before its scrape,
    # the gauge of the last scrape in an interval with no rate yet (an edge: skipped).
    assert got.sort("ts")["decode_tps"].to_list() == pytest.approx([10.0, 20.0])
    assert set(got["instance_id"]) == {"p0"}


def test_labels_with_escapes_braces_and_exemplars_parse():
    text = (
        'vllm:num_requests_running{pod="a\\"b}",role="decode"} 3 1740787200 # {trace_id="x"} 1\n'
        "# EOF\n"
    )
    raw = parse(text, "x.om")
    assert raw.samples["value"].to_list() == [3.0]
    assert raw.labels.filter(pl.col("labels") != "")["pod"].to_list() == ['a"b}']


@pytest.mark.parametrize("ending", ["\n", "", "\n\n"])
def test_large_files_split_by_the_csv_reader_parse_as_text_does(tmp_path, ending):
    instances, load = source_frames(intervals=240)
    body = write_openmetrics(instances, load).removesuffix("# EOF\n").replace("\n", "\n  \n", 1)
    text = "# a comment\n\n" + body + "garbage here\n# EOF" + ending
    assert len(text) > LINE_READER_FROM_BYTES
    path = tmp_path / "x.om"
    path.write_text(text)
    slow = parse(text, str(path), now=NOW)
    for fast in (parse_bytes(text.encode(), str(path), now=NOW), parse_file(path, now=NOW)):
        assert fast.samples.equals(slow.samples)
        assert fast.series.equals(slow.series)
        assert fast.quarantine.equals(slow.quarantine)
        assert fast.quarantine["reason"].to_list() == ["malformed_line"]
        assert (fast.rows_read, fast.types) == (slow.rows_read, slow.types)


@pytest.mark.parametrize(
    "data", [b"", b"a", b"a\n", b"a\nb", b"\n\n", b"x\ny\n# EOF", b"a\nb\nc\nd\n", b"a\nb\nc\nd\ne"]
)
def test_last_lines_are_those_rsplit_gives(data):
    assert _last_lines(data, 3) == data.rsplit(b"\n", 3)[-3:]


def test_one_source_keeps_its_series_ids():
    instances, load = source_frames(intervals=4)
    raw = parse(write_openmetrics(instances, load), "x.om", now=NOW)
    assert RawSamples.concat([raw]) is raw
    both = RawSamples.concat([raw, parse(write_openmetrics(instances, load), "y.om", now=NOW)])
    assert both.series.height == raw.series.height


def test_merged_sources_keep_each_samples_name_and_labels():
    instances, load = source_frames(intervals=4)
    text = write_openmetrics(instances, load)
    lines = text.splitlines()
    first = parse("\n".join(lines[::2]) + "\n# EOF\n", "x.om", now=NOW)
    second = parse("\n".join(lines[1::2]) + "\n# EOF\n", "y.om", now=NOW)
    both = RawSamples.concat([first, second])
    columns = ["source", "line", "metric", "labels", "ts", "value"]
    expected = pl.concat([first.named(), second.named()]).select(columns)
    assert both.named().select(columns).equals(expected)
    assert both.series["series"].is_unique().all()


def test_a_large_file_that_is_not_ascii_is_read_as_text(tmp_path):
    instances, load = source_frames(intervals=240)
    text = write_openmetrics(instances, load).replace('service="', 'service="café-', 1)
    assert len(text) > LINE_READER_FROM_BYTES
    path = tmp_path / "x.om"
    path.write_text(text)
    got, expected = parse_file(path, now=NOW), parse(text, str(path), now=NOW)
    assert got.named().equals(expected.named())
    assert "café-chat" in got.labels["service"].to_list()


def test_a_field_after_the_timestamp_is_malformed():
    text = 'foo 1 1740787200000 junk\nbar{a="b"} 1 1740787200000 x} y\nbaz 1 1740787200000\n'
    raw = parse(text, "x.prom", now=NOW)
    assert raw.named()["metric"].to_list() == ["baz"]
    assert raw.quarantine["reason"].to_list() == ["malformed_line", "malformed_line"]


def _ready(times, values):
    start = START.timestamp()
    labels = 'pod="p0",service="chat",condition="true"'
    return [
        f"kube_pod_status_ready{{{labels}}} {v} {start + t}"
        for v, t in zip(values, times, strict=True)
    ]


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "0.5", "2", "-1"])
def test_readiness_that_is_not_0_or_1_is_quarantined_and_its_interval_is_a_gap(tmp_path, value):
    labels = 'pod="p0",role="decode",service="chat"'
    lines = _counter([0, 150, 300], [0, 15, 30], labels) + _gauge([7.5, 22.5])
    lines += _ready([7.5, 22.5], ["1", value])
    prepared = _load(tmp_path, "\n".join([*lines, "# EOF"]) + "\n")
    bad = prepared.canonical.quarantine
    invalid = bad.filter(pl.col("reason") == "invalid_readiness")
    assert invalid["rows"].to_list() == [1]
    assert "neither 0 nor 1" in invalid["detail"][0]
    gap = bad.filter(pl.col("reason") == "incomplete_interval")
    assert gap["detail"].to_list() == ["no value for ready"]
    got = prepared.canonical.instance_samples
    assert got.select("ts", "ready").rows() == [(START, True)]
    assert prepared.rows_read == prepared.canonical.rows_loaded + prepared.rows_quarantined


def test_readiness_0_and_1_average_over_the_interval(tmp_path):
    lines = _counter([0, 150, 300], [0, 15, 30]) + _gauge([5, 10, 20, 25])
    lines += _ready([5, 10, 20, 25], ["1", "0", "0", "0"])
    got = _load(tmp_path, "\n".join([*lines, "# EOF"]) + "\n").canonical.instance_samples
    assert got.sort("ts")["ready"].to_list() == [True, False]
