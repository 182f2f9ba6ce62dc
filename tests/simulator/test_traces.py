"""Trace loaders: the shipped files parse into the canonical frame; bad input fails clearly."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from simulator import TraceError, load_azure, load_mooncake, thin
from simulator.traces import REQUEST_SCHEMA, SYNTHETIC_EPOCH, canonical_frame, validate_requests


def test_azure_parses_the_shipped_trace(azure):
    requests = azure.requests
    assert dict(requests.schema) == REQUEST_SCHEMA
    assert requests.height == 19_366
    assert requests["arrival_s"].is_sorted()
    assert requests["arrival_s"][0] == 0.0
    assert 3_500 < requests["arrival_s"][-1] < 3_510  # 58.4 minutes
    assert azure.start == datetime(2023, 11, 16, 18, 15, 46, 680590, tzinfo=UTC)
    assert requests["input_tokens"].sum() == 22_361_870
    assert requests["prefix_hashes"].list.len().sum() == 0


def test_mooncake_spreads_bucketed_arrivals_with_a_seed():
    trace = load_mooncake(seed=3)
    requests = trace.requests
    assert requests.height == 500
    assert trace.start == SYNTHETIC_EPOCH
    assert requests["arrival_s"].is_sorted()
    # Arrivals are stamped in 3 s buckets; the last bucket of the slice starts at 165 s.
    assert requests["arrival_s"].min() >= 0.0
    assert requests["arrival_s"].max() < 168.0
    assert requests["arrival_s"].n_unique() == 500
    assert requests["prefix_hashes"].list.len().min() >= 1
    again = load_mooncake(seed=3).requests
    other = load_mooncake(seed=4).requests
    assert requests.equals(again)
    assert not requests["arrival_s"].equals(other["arrival_s"])


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD_ROW = "2023-11-16 18:15:46.6805900,374,44\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,374\n",
            r"missing column\(s\) \['GeneratedTokens'\]",
        ),
        (
            AZURE_HEADER + GOOD_ROW + "2023-11-16 18:15:47.0000000,abc,10\n",
            r":3: column 'ContextTokens': cannot parse 'abc' as an integer",
        ),
        (
            AZURE_HEADER + GOOD_ROW + GOOD_ROW + "2023-11-16 18:15:48.0,10,-5\n",
            r":4: column 'GeneratedTokens': token count is negative \(-5\)",
        ),
        (AZURE_HEADER + "yesterday,10,5\n", r":2: column 'TIMESTAMP': cannot parse 'yesterday'"),
        (AZURE_HEADER, r"no requests"),
    ],
)
def test_azure_rejects_bad_input_naming_file_and_line(tmp_path, body, message):
    path = _write(tmp_path, "trace.csv", body)
    with pytest.raises(TraceError, match=message) as error:
        load_azure(path)
    assert str(path) in str(error.value)


GOOD_JSON = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}\n'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"timestamp": 0, "input_length": 600\n', r":2: invalid JSON"),
        ('{"timestamp": 0, "output_length": 5, "hash_ids": []}\n', r":2: 'input_length' missing"),
        (
            '{"timestamp": 0, "input_length": -1, "output_length": 5, "hash_ids": []}\n',
            r":2: 'input_length' not a non-negative integer: -1",
        ),
        (
            '{"timestamp": 0, "input_length": 6, "output_length": 5, "hash_ids": "x"}\n',
            r":2: 'hash_ids' must be a list of integers",
        ),
        (
            '{"timestamp": "soon", "input_length": 6, "output_length": 5, "hash_ids": []}\n',
            r":2: 'timestamp' not a non-negative number",
        ),
    ],
)
def test_mooncake_rejects_bad_input_naming_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, "trace.jsonl", GOOD_JSON + line)
    with pytest.raises(TraceError, match=message) as error:
        load_mooncake(path)
    assert str(path) in str(error.value)


def test_validate_requests_refuses_what_the_simulator_cannot_replay():
    good = canonical_frame([0.0, 1.0], [10, 20], [1, 2])
    assert validate_requests(good).equals(good)
    with pytest.raises(ValueError, match="row 1: output_tokens < 1"):
        validate_requests(canonical_frame([0.0, 1.0], [10, 20], [1, 0]))
    with pytest.raises(ValueError, match="not sorted"):
        validate_requests(good.reverse())
    with pytest.raises(ValueError, match="no rows"):
        validate_requests(good.clear())
    with pytest.raises(ValueError, match=r"missing columns \['prefix_hashes'\]"):
        validate_requests(good.drop("prefix_hashes"))


def test_thin_scales_the_load_and_keeps_the_length_mix(azure):
    thinned = thin(azure.requests, 0.2, seed=1)
    assert thinned.height == pytest.approx(0.2 * azure.requests.height, rel=0.05)
    assert thinned["input_tokens"].mean() == pytest.approx(
        azure.requests["input_tokens"].mean(), rel=0.05
    )
    assert thinned.equals(thin(azure.requests, 0.2, seed=1))
    assert thinned["arrival_s"].is_sorted()
    with pytest.raises(ValueError):
        thin(azure.requests, 0.0)
    assert isinstance(thinned, pl.DataFrame)
