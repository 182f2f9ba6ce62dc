"""Hand-made observations for controller tests: inputs with a tiny history, and windows."""

from datetime import UTC, datetime, timedelta

import numpy as np

from policies.controller import PoolView, Window
from policies.inputs import PolicyInputs, PoolCapacity
from policies.slo import ServiceSLO
from simulator.fluid_load import FluidLoad, LengthMix

START = datetime(2024, 1, 1, tzinfo=UTC)
PREFILL_KEY = ("prefill", "L20", 4)
DECODE_KEY = ("decode", "H20", 4)
MIX = LengthMix(1000.0, 200.0, 1100.0, 1200.0, (900.0, 2500.0, 4000.0))


def inputs(
    *, pd_ratio=4.0, decode_tps_per_instance=200.0, max_instances=512, pools=None
) -> PolicyInputs:
    """Prefill carries 1,000 prompt tok/s and decode 1,000 tok/s per instance at the SLO."""
    requests = np.full(8, 10.0)
    history = FluidLoad(START, 15.0, requests, requests * 1000, requests * 200, MIX)
    return PolicyInputs(
        pools=pools
        or (
            PoolCapacity(PREFILL_KEY, 1000.0, max_instances=max_instances),
            PoolCapacity(DECODE_KEY, 1000.0, max_instances=max_instances),
        ),
        slo=ServiceSLO(ttft_p99_s=6.0, tbt_p99_s=0.1),
        pd_ratio=pd_ratio,
        decode_tps_per_instance=decode_tps_per_instance,
        history=history,
    )


def metrics(*, decode_tps=0.0, prefill_tps=0.0, ttft=1.0, tbt=0.05, util=0.5) -> dict:
    return {
        "gpu_util_ratio": util,
        "sm_active_ratio": util / 2,
        "prefill_tps_cache_missed": prefill_tps,
        "prefill_tps_total": prefill_tps,
        "decode_tps": decode_tps,
        "ttft_p50_s": ttft / 2,
        "ttft_p90_s": ttft * 0.8,
        "ttft_p99_s": ttft,
        "tbt_p50_s": tbt / 2,
        "tbt_p90_s": tbt * 0.8,
        "tbt_p99_s": tbt,
        "queue_depth": 0.0,
        "running_requests": 1.0,
        "kv_usage_ratio": 0.1,
    }


def window(
    t_s: float,
    *,
    prefill=8,
    decode=2,
    starting=(0, 0),
    decode_tps_total=0.0,
    ttft=1.0,
    tbt=0.05,
    stale=False,
) -> Window:
    """A window of one prefill and one decode pool; ``decode_tps_total`` is the pool's."""
    per_decode = decode_tps_total / decode if decode else 0.0
    views = (
        PoolView(PREFILL_KEY, prefill, starting[0], None if stale else metrics(ttft=ttft)),
        PoolView(
            DECODE_KEY,
            decode,
            starting[1],
            None if stale else metrics(decode_tps=per_decode, tbt=tbt),
        ),
    )
    return Window(START + timedelta(seconds=t_s), t_s, 15.0, 30.0, views)
