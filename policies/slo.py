"""A service's latency objectives: what every policy is held to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSLO:
    """A service's latency objectives and the share of intervals that must meet them.

    The paper publishes no SLO values (§6). Ours for the embedded Llama-3.1-70B on L20/H20:
    TBT p99 100 ms (about 3x the H20 decode step floor of 33 ms) and TTFT p99 6 s (the
    Azure mix's p99 prompt of ~4.1k tokens takes ~4.2 s on an idle 4 x L20 instance, so 6 s
    leaves ~1.8 s of queueing).
    """

    ttft_p99_s: float = 6.0
    tbt_p99_s: float = 0.1
    attainment: float = 0.99

    def __post_init__(self) -> None:
        if not (self.ttft_p99_s > 0 and self.tbt_p99_s > 0 and 0 < self.attainment <= 1):
            raise ValueError("SLO latencies must be > 0 and attainment in (0, 1]")
