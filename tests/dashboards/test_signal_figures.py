"""The signal study's figures on small hand-built tables: which candidates they show, that every
trace is named and every axis has a unit, that the knee is the study's, and that undefined
statistics (null or NaN) leave gaps instead of failing."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dashboards import signal_fit_figure, signal_series_figure, signal_statistics_figure
from dashboards.signal_candidates import shown
from dashboards.wording import LOAD_NAMES, UNITS, number
from signals import LOAD_COLUMNS, SIGNALS
from signals.statistics import linearity

N = 30
LOAD = np.linspace(100.0, 1000.0, N)


def candidate(role, signal, rank, **statistics):
    """One row of the study table; statistics not given are those of a clean linear signal."""
    return {
        "service": "svc",
        "role": role,
        "gpu_type": None,
        "signal": signal,
        "class": "proportional",
        "rank": rank,
        "load_column": "input_tps" if role == "prefill" else "output_tps",
        "load_dynamic_range": 0.2,
        "pearson": 0.99,
        "spearman": 0.99,
        "r_squared": 0.98,
        "dynamic_range": 0.2,
        "snr": 20.0,
        "steady_cv": 0.05,
        "lag": 0.0,
        "lag_correlation": 0.9,
        "breach_auc": 0.8,
        "residual_std": 5.0,
        "knee_pvalue": 0.5,
        "knee_load": math.nan,
        "slope_below": math.nan,
        "slope_above": math.nan,
        "slope_ratio": math.nan,
        "cliff": False,
    } | statistics


def study(*rows):
    return pl.DataFrame(list(rows), schema_overrides={"gpu_type": pl.String})


def series(role, gpu_type=None, **signals):
    """The paired series of one role: the given signals per interval, the loads, in time
    order."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": [start + timedelta(minutes=i) for i in range(N)],
            "service": "svc",
            "role": role,
            "gpu_type": gpu_type,
            "input_tps": 2 * LOAD,
            "output_tps": LOAD,
            **signals,
        },
        schema_overrides={"gpu_type": pl.String},
    )


def test_shown_candidates_are_the_top_ranked_and_the_papers_contrasts():
    rows = [candidate("decode", f"s{rank}", rank) for rank in range(1, 6)]
    rows += [candidate("decode", "gpu_util_ratio", 9), candidate("prefill", "ttft_p99_s", 8)]
    rows += [candidate("decode", "s0", 0, gpu_type="H20")]  # one GPU type: not a whole role
    picked = shown(study(*rows))
    assert picked.select("role", "signal").rows() == [
        ("decode", "s1"),
        ("decode", "s2"),
        ("decode", "s3"),
        ("prefill", "ttft_p99_s"),
        ("decode", "gpu_util_ratio"),
    ]


def test_several_services_are_refused():
    table = study(candidate("decode", "decode_tps", 1), candidate("decode", "decode_tps", 1))
    table = table.with_columns(service=pl.Series(["a", "b"]))
    for build in (
        signal_statistics_figure,
        lambda t: signal_fit_figure(series("decode"), t),
        lambda t: signal_series_figure(series("decode"), t),
    ):
        with pytest.raises(ValueError, match="services"):
            build(table)


def test_an_empty_study_gives_empty_figures():
    empty = study(candidate("decode", "decode_tps", 1)).clear()
    for figure in (
        signal_statistics_figure(empty),
        signal_fit_figure(series("decode"), empty),
        signal_series_figure(series("decode"), empty),
    ):
        assert not figure.data or not figure.data[0].y


def test_every_signal_and_load_has_a_unit_on_the_page():
    assert set(UNITS) == set(SIGNALS)
    assert set(LOAD_NAMES) == set(LOAD_COLUMNS)


def test_undefined_statistics_read_na():
    values = (None, math.nan, math.inf, 0.12345)
    assert [number(v) for v in values] == ["n/a", "n/a", "inf", "0.123"]


class TestFit:
    def figure(self):
        rng = np.random.default_rng(0)
        hinge = 0.03 + 1e-5 * LOAD + 2e-4 * np.maximum(LOAD - 700.0, 0.0)
        latency = hinge + rng.normal(0.0, 1e-4, N)
        knee = linearity(LOAD, latency, resamples=200)
        assert knee.cliff  # the data has one; the figure must draw the study's
        rows = study(
            candidate("decode", "decode_tps", 1),
            candidate(
                "decode",
                "tbt_p99_s",
                2,
                **{"class": "negative_feedback", "residual_std": math.nan},
                knee_load=knee.knee_load,
                knee_pvalue=knee.knee_pvalue,
                slope_below=knee.slope_below,
                slope_above=knee.slope_above,
                slope_ratio=knee.slope_ratio,
                cliff=True,
            ),
            candidate("prefill", "prefill_tps_total", 3, snr=None),
        )
        pairs = pl.concat(
            [
                series("decode", decode_tps=LOAD, tbt_p99_s=latency, prefill_tps_total=None),
                series("prefill", decode_tps=None, tbt_p99_s=None, prefill_tps_total=2 * LOAD),
                # A GPU type's own rows are not the whole role's and stay out.
                series(
                    "decode", "H20", decode_tps=-LOAD, tbt_p99_s=0 * LOAD, prefill_tps_total=None
                ),
            ],
            how="vertical_relaxed",
        )
        return signal_fit_figure(pairs, rows), latency

    def test_facets_are_titled_role_signal_with_class_and_rank(self):
        figure, _ = self.figure()
        titles = [a.text for a in figure.layout.annotations]
        assert titles == [
            "decode decode_tps (proportional, rank 1)",
            "decode tbt_p99_s (negative_feedback, rank 2)",
            "prefill prefill_tps_total (proportional, rank 3)",
        ]

    def test_each_facet_has_its_points_fit_band_and_units(self):
        figure, _ = self.figure()
        by_axis = {}
        for trace in figure.data:
            by_axis.setdefault(trace.xaxis, []).append(trace.name)
        assert by_axis == {
            "x": ["linear fit ± 2 residual sd", "intervals", "linear fit"],
            # No band where the residual spread is undefined; the knee where it was found.
            "x2": ["intervals", "linear fit", "two-segment fit", "knee"],
            "x3": ["linear fit ± 2 residual sd", "intervals", "linear fit"],
        }
        layout = figure.layout
        assert [layout[f"xaxis{i}"].title.text for i in ("", 2, 3)] == [
            "offered output tokens/s",
            "offered output tokens/s",
            "offered prompt tokens/s",
        ]
        assert [layout[f"yaxis{i}"].title.text for i in ("", 2, 3)] == ["tokens/s", "s", "tokens/s"]
        # Every kind of trace is in the legend once.
        listed = [t.name for t in figure.data if t.showlegend]
        assert sorted(listed) == sorted(set(t.name for t in figure.data))

    def test_points_are_the_whole_roles_and_the_band_is_two_residual_sds(self):
        figure, _ = self.figure()
        band, points, line = (t for t in figure.data if t.xaxis == "x")
        assert list(points.x) == list(LOAD) and list(points.y) == list(LOAD)
        assert list(line.y) == pytest.approx([100.0, 1000.0])
        assert list(band.y) == pytest.approx([90.0, 990.0, 1010.0, 110.0, 90.0])

    def test_the_knee_is_where_the_study_put_it_on_its_two_segment_fit(self):
        figure, latency = self.figure()
        traces = {t.name: t for t in figure.data if t.xaxis == "x2"}
        segments, knee = traces["two-segment fit"], traces["knee"]
        at = knee.x[0]
        assert at == segments.x[1] == pytest.approx(700.0, rel=0.05)

        # The drawn line is the least-squares hinge at the study's knee, fitted afresh here.
        def design(x):
            return np.column_stack([np.ones(len(x)), x, np.maximum(np.asarray(x) - at, 0.0)])

        coefficients = np.linalg.lstsq(design(LOAD), latency, rcond=None)[0]
        assert list(segments.y) == pytest.approx(list(design(segments.x) @ coefficients))
        assert knee.y[0] == pytest.approx(segments.y[1])
        assert "cliff at" in knee.hovertext

    def test_a_candidate_without_values_in_the_series_has_an_empty_facet(self):
        rows = study(candidate("decode", "decode_tps", 1))
        figure = signal_fit_figure(series("prefill", decode_tps=LOAD), rows)
        assert not figure.data
        assert figure.layout.annotations[0].text == "decode decode_tps (proportional, rank 1)"


class TestStatistics:
    def figure(self):
        return signal_statistics_figure(
            study(
                candidate(
                    "prefill",
                    "ttft_p99_s",
                    2,
                    **{"class": "unusable"},
                    pearson=-0.3,
                    snr=math.inf,
                    breach_auc=None,
                    lag=-2.0,
                    lag_correlation=0.5,
                ),
                candidate("decode", "decode_tps", 1, snr=4.0, dynamic_range=0.4, breach_auc=0.75),
                candidate(
                    "decode",
                    "gpu_util_ratio",
                    3,
                    gpu_type="H20",
                    steady_cv=math.nan,
                    lag=math.nan,
                    lag_correlation=math.nan,
                ),
            )
        )

    def test_rows_are_candidates_in_rank_order_with_their_class(self):
        (heatmap,) = self.figure().data
        assert list(heatmap.y) == [
            "1. decode decode_tps (proportional)",
            "2. prefill ttft_p99_s (unusable)",
            "3. decode gpu_util_ratio on H20 (proportional)",
        ]
        assert list(heatmap.x) == [
            "Pearson r",
            "Spearman rho",
            "R²",
            "dynamic range / load's",
            "SNR",
            "steady CV",
            "lag correlation",
            "breach AUC",
        ]

    def test_colours_are_scores_and_text_the_values(self):
        (heatmap,) = self.figure().data
        columns = list(heatmap.x)
        cell = {
            (row.split(" ")[2], column): (heatmap.z[i][j], heatmap.text[i][j])
            for i, row in enumerate(heatmap.y)
            for j, column in enumerate(columns)
        }
        assert cell["decode_tps", "SNR"] == (0.5, "4")  # the classifier's minimum
        assert cell["decode_tps", "dynamic range / load's"] == (0.5, "2")  # twice the load's
        assert cell["decode_tps", "breach AUC"] == (0.5, "0.75")  # halfway from chance
        assert cell["ttft_p99_s", "Pearson r"] == (0.0, "-0.3")  # falls with load
        assert cell["ttft_p99_s", "SNR"] == (1.0, "inf")
        assert cell["ttft_p99_s", "lag correlation"] == (0.5, "0.5, lag -2")
        assert cell["decode_tps", "steady CV"][0] == pytest.approx(2 / 3)
        assert all(0 <= z <= 1 for row in heatmap.z for z in row if z is not None)

    def test_undefined_statistics_are_blank_cells_that_read_na(self):
        (heatmap,) = self.figure().data
        columns = list(heatmap.x)
        assert heatmap.z[1][columns.index("breach AUC")] is None
        assert heatmap.text[1][columns.index("breach AUC")] == "n/a"
        for column in ("steady CV", "lag correlation"):
            assert heatmap.z[2][columns.index(column)] is None
            assert heatmap.text[2][columns.index(column)] == "n/a"

    def test_axes_and_colour_scale_say_what_they_show(self):
        layout = self.figure().layout
        assert layout.xaxis.title.text and layout.yaxis.title.text and layout.title.text
        assert layout.yaxis.autorange == "reversed"  # rank 1 on top


class TestSeries:
    def figure(self):
        ramp = np.concatenate([LOAD[: N // 2], LOAD[: N // 2][::-1]])
        rows = study(
            candidate("decode", "decode_tps", 1),
            candidate("prefill", "gpu_util_ratio", 2),
            candidate("decode", "kv_usage_ratio", 3),
            candidate("prefill", "queue_depth", 4),
            candidate("decode", "tbt_p99_s", 5),  # the role's third: not drawn
        )
        pairs = pl.concat(
            [
                series(
                    "decode",
                    decode_tps=ramp,
                    kv_usage_ratio=[None] * (N - 1) + [0.5],
                    tbt_p99_s=ramp,
                    gpu_util_ratio=None,
                    queue_depth=None,
                ),
                series("prefill", gpu_util_ratio=ramp / 2000, queue_depth=np.zeros(N)),
            ],
            how="diagonal_relaxed",
        )
        return signal_series_figure(pairs, rows), ramp

    def test_each_roles_top_signals_and_its_load_share_a_panel(self):
        figure, _ = self.figure()
        assert [(t.yaxis, t.name) for t in figure.data] == [
            ("y", "decode decode_tps (rank 1)"),
            ("y", "decode kv_usage_ratio (rank 3)"),
            ("y", "offered output tokens/s"),
            ("y2", "prefill gpu_util_ratio (rank 2)"),
            ("y2", "prefill queue_depth (rank 4)"),
            ("y2", "offered prompt tokens/s"),
        ]
        layout = figure.layout
        assert [a.text for a in layout.annotations] == [
            "decode: best-ranked signals and offered load",
            "prefill: best-ranked signals and offered load",
        ]
        assert layout.xaxis2.title.text == "time (UTC)"
        assert layout.yaxis.title.text == layout.yaxis2.title.text == "share of its own peak"

    def test_each_line_is_over_its_own_peak(self):
        figure, ramp = self.figure()
        traces = {t.name: t for t in figure.data}
        for name in ("decode decode_tps (rank 1)", "prefill gpu_util_ratio (rank 2)"):
            assert list(traces[name].y) == pytest.approx(list(ramp / ramp.max()))
        assert max(traces["offered output tokens/s"].y) == 1.0
        # No peak above 0: a blank line, not a division by zero.
        assert set(traces["prefill queue_depth (rank 4)"].y) == {None}
        # A gap stays a gap.
        assert list(traces["decode kv_usage_ratio (rank 3)"].y) == [None] * (N - 1) + [1.0]
