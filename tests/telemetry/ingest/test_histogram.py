"""histogram_quantile's interpolation, against values worked out by hand from PromQL's rules."""

import polars as pl
import pytest

from telemetry.ingest.histogram import histogram_quantiles

INF = float("inf")


def quantiles(les, counts, **qs):
    buckets = pl.DataFrame({"h": "x", "le": les, "count": counts})
    return histogram_quantiles(buckets, ["h"], qs).row(0, named=True)


def test_interpolates_linearly_inside_the_bucket_that_holds_the_rank():
    # 100 observations: 50 <= 0.1, 90 <= 0.5, all <= 1.0
    got = quantiles([0.1, 0.5, 1.0, INF], [50.0, 90.0, 100.0, 100.0], p50=0.5, p70=0.7, p99=0.99)
    assert got["p50"] == pytest.approx(0.1)  # rank 50 closes the first bucket
    assert got["p70"] == pytest.approx(0.1 + 0.4 * (70 - 50) / 40)
    assert got["p99"] == pytest.approx(0.5 + 0.5 * (99 - 90) / 10)


def test_first_bucket_starts_at_zero_and_inf_bucket_returns_the_top_bound():
    got = quantiles([0.2, 1.0, INF], [10.0, 10.0, 20.0], low=0.25, high=0.9)
    assert got["low"] == pytest.approx(0.2 * (0.25 * 20) / 10)
    assert got["high"] == pytest.approx(1.0)


def test_non_monotonic_counts_are_made_monotonic_and_empty_histograms_are_null():
    got = quantiles([0.1, 0.5, INF], [10.0, 8.0, 10.0], p50=0.5)
    assert got["p50"] == pytest.approx(0.05)
    assert quantiles([0.1, INF], [0.0, 0.0], p50=0.5)["p50"] is None


def test_histograms_without_an_inf_bucket_are_left_out():
    buckets = pl.DataFrame(
        {"h": ["a", "a", "b", "b"], "le": [0.1, INF, 0.1, 0.5], "count": [1.0, 2.0, 1.0, 2.0]}
    )
    assert histogram_quantiles(buckets, ["h"], {"p50": 0.5})["h"].to_list() == ["a"]


def test_many_shuffled_histograms_give_each_its_own_quantiles():
    histograms = {
        ("a", 1): ([0.1, 0.5, INF], [5.0, 9.0, 10.0]),
        ("a", 2): ([0.2, 1.0, 2.0, INF], [0.0, 4.0, 4.0, 8.0]),
        ("b", 1): ([INF], [3.0]),
        ("b", 2): ([0.3, INF], [0.0, 0.0]),
    }
    rows = [
        {"h": h, "t": t, "le": le, "count": c}
        for (h, t), (les, counts) in histograms.items()
        for le, c in zip(les, counts, strict=True)
    ]
    shuffled = pl.DataFrame(rows).sample(fraction=1.0, shuffle=True, seed=3)
    got = histogram_quantiles(shuffled, ["h", "t"], {"p50": 0.5, "p90": 0.9}).sort("h", "t")
    for h, t, p50, p90 in got.rows():
        one = pl.DataFrame([r for r in rows if (r["h"], r["t"]) == (h, t)])
        alone = histogram_quantiles(one, ["h", "t"], {"p50": 0.5, "p90": 0.9}).row(0)
        assert (p50, p90) == alone[2:]
    assert got.height == len(histograms)
    assert got.filter(pl.col("h") == "b")["p50"].to_list() == [None, None]
