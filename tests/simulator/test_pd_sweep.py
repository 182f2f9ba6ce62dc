"""The paper's Fig. 4 experiment: 16 instances split between prefill and decode, each split
pressure-tested. The sustained throughput must be unimodal in the split with an interior
optimum, because each side becomes the bottleneck in turn; nothing in the simulator knows a
ratio."""

import pytest

from simulator import ClusterSpec, PoolSpec, default_trace
from simulator.pressure import sustained_throughput

INSTANCES = 16
#: Azure 2023 offers ~1.2k generated tokens/s; 40x exceeds every split's capacity (~28k).
RATE_FACTOR = 40.0


def split(prefill: int) -> ClusterSpec:
    """Llama-2-70B on DGX-H100 machines (TP 8), the hardware the performance model is fitted on."""
    return ClusterSpec(
        model="Llama-2-70B",
        prefill_pools=(PoolSpec("prefill", "H100-SXM", tp=8, count=prefill),),
        decode_pools=(PoolSpec("decode", "H100-SXM", tp=8, count=INSTANCES - prefill),),
    )


@pytest.fixture(scope="module")
def sweep() -> list[float]:
    requests = default_trace().requests.head(8000)
    return [
        sustained_throughput(requests, split(p), rate_factor=RATE_FACTOR).decode_tps
        for p in range(1, INSTANCES)
    ]


def test_throughput_is_unimodal_with_an_interior_optimum(sweep):
    best = max(range(len(sweep)), key=sweep.__getitem__)
    assert 0 < best < len(sweep) - 1
    rising, falling = sweep[: best + 1], sweep[best:]
    # Within 2% of monotone on each side: a plateau is allowed, a second peak is not.
    assert all(b >= 0.98 * a for a, b in zip(rising, rising[1:], strict=False))
    assert all(b <= 1.02 * a for a, b in zip(falling, falling[1:], strict=False))


def test_extreme_splits_lose_at_least_a_fifth(sweep):
    best = max(sweep)
    assert sweep[0] <= 0.8 * best
    assert sweep[-1] <= 0.8 * best


def test_below_saturation_the_cluster_serves_what_is_offered():
    requests = default_trace().requests.head(3000)
    served = sustained_throughput(requests, split(8), rate_factor=2.0)
    arrivals = requests.filter(requests["arrival_s"] >= 0.25 * requests["arrival_s"].max())
    offered_prompt_tps = 2.0 * arrivals["input_tokens"].sum() / (0.75 * requests["arrival_s"].max())
    assert served.prefill_tps == pytest.approx(offered_prompt_tps, rel=0.15)


def test_rate_factor_and_settling_are_checked():
    with pytest.raises(ValueError, match="rate_factor"):
        sustained_throughput(default_trace().requests.head(10), split(8), rate_factor=0.0)
