"""Shared fixtures: real trace slices and a small cluster, loaded once per session."""

from __future__ import annotations

import polars as pl
import pytest

from simulator import ClusterSpec, PoolSpec, Trace, load_azure


@pytest.fixture(scope="session")
def azure() -> Trace:
    """The shipped Azure 2023 conversation trace."""
    return load_azure()


@pytest.fixture(scope="session")
def azure_peak(azure: Trace) -> pl.DataFrame:
    """Ten busy minutes of the Azure trace (minutes 25-35, its plateau), re-based to t = 0."""
    return azure.requests.filter(
        pl.col("arrival_s").is_between(1500.0, 2100.0, closed="left")
    ).with_columns(pl.col("arrival_s") - 1500.0)


@pytest.fixture(scope="session")
def small_cluster() -> ClusterSpec:
    """Llama-3.1-8B on single GPUs: cheap to simulate, still disaggregated and heterogeneous."""
    return ClusterSpec(
        model="Llama-3.1-8B",
        prefill_pools=(PoolSpec("prefill", "L40S", tp=1, count=2),),
        decode_pools=(
            PoolSpec("decode", "H20", tp=1, count=1),
            PoolSpec("decode", "RTX-PRO-6000", tp=1, count=1),
        ),
    )
