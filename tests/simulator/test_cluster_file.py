"""Cluster files: what a user writes becomes a ClusterSpec, or a message naming the mistake."""

import pytest

from simulator.cluster_file import ClusterFileError, load_cluster

GOOD = """
model: Llama-3.1-70B
prefill_pools:
  - {gpu_type: L20, tp: 4, count: 6}
decode_pools:
  - {gpu_type: H20, tp: 4, count: 2}
  - {gpu_type: H100-SXM, tp: 2, count: 1}
decode_max_num_seqs: 128
"""


def write(tmp_path, text):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return path


def test_a_heterogeneous_cluster_loads_with_its_knobs(tmp_path):
    cluster = load_cluster(write(tmp_path, GOOD))
    assert cluster.describe() == (
        "Llama-3.1-70B: 6 prefill x 4 L20, 2 decode x 4 H20, 1 decode x 2 H100-SXM"
    )
    assert cluster.decode_max_num_seqs == 128
    assert cluster.prefill_token_budget == 8192  # untouched knobs keep their defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "speed: 11\n", r"unknown keys \['speed'\]"),
        (GOOD.replace("model: Llama-3.1-70B\n", ""), "missing key 'model'"),
        (GOOD.replace("tp: 4, count: 6", "tp: 4"), r"prefill_pools\[0\] must have exactly"),
        (GOOD.replace("L20", "TPUv5"), "unknown gpu_type 'TPUv5'"),
        ("- just a list\n", "expected a mapping"),
        ("model: [unclosed\n", "cannot read a cluster"),
    ],
)
def test_mistakes_are_named(tmp_path, text, message):
    with pytest.raises(ClusterFileError, match=message):
        load_cluster(write(tmp_path, text))
