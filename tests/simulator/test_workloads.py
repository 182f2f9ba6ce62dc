"""load_trace: one entry point for every shipped trace format."""

import pytest

from simulator import TraceError, load_trace
from simulator.paths import AZURE_CONV_CSV, MOONCAKE_CONV_SLICE_JSONL, SERVEGEN_SLICE_CSV_GZ


@pytest.mark.parametrize(
    ("path", "trace_format"),
    [
        (AZURE_CONV_CSV, "azure"),
        (MOONCAKE_CONV_SLICE_JSONL, "mooncake"),
        (SERVEGEN_SLICE_CSV_GZ, "servegen"),
    ],
)
def test_every_format_loads_into_the_canonical_frame(path, trace_format):
    trace = load_trace(path, trace_format)
    assert trace.requests.height > 100
    assert trace.requests["arrival_s"].is_sorted()
    assert (trace.requests["input_tokens"] > 0).all()


def test_an_unknown_format_names_the_choices():
    with pytest.raises(TraceError, match="azure, mooncake, servegen|'azure', 'mooncake'"):
        load_trace(AZURE_CONV_CSV, "burstgpt")
