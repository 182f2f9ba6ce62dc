"""Figure builders: every trace carries data, the data is the table's, and the legend names
every trace once, plainly."""

import polars as pl
import pytest

import dashboards
from dashboards import (
    decisions_figure,
    mode_agreement_figure,
    pd_split_figure,
    per_day_figure,
    placement_figure,
    policies_figure,
    signal_fit_figure,
    signal_scores_figure,
    signal_series_figure,
    signal_statistics_figure,
    telemetry_figure,
    timeline_figure,
)

SHOWN = ["heteroscale", "oracle", "static_peak"]


def figures(tables):
    target = tables["curated_policy"]["slo_attainment_target"].item()
    return {
        "telemetry": telemetry_figure(tables["instance_samples"], tables["service_load"]),
        "signal_scores": signal_scores_figure(tables["signal_scores"]),
        "decisions": decisions_figure(tables["decisions"]),
        "placement": placement_figure(tables["placement"]),
        "policies": policies_figure(tables["fleet_summary"], tables["curated_policy"]),
        "timeline": timeline_figure(
            tables["fleet_timeline"], tables["curated_policy"], shown=SHOWN
        ),
        "per_day": per_day_figure(tables["fleet_per_day"], slo_attainment_target=target),
        "pd_split": pd_split_figure(tables["pressure_sweep"], tables["curated_policy"]),
        "signal_fit": signal_fit_figure(tables["signal_series"], tables["signal_study"]),
        "signal_series": signal_series_figure(tables["signal_series"], tables["signal_study"]),
        "signal_statistics": signal_statistics_figure(tables["signal_study"]),
        "mode_agreement": mode_agreement_figure(tables["mode_agreement"]),
    }


@pytest.fixture(scope="module")
def drawn(tables):
    return figures(tables)


NAMES = [
    "telemetry",
    "signal_scores",
    "decisions",
    "placement",
    "policies",
    "timeline",
    "per_day",
    "signal_fit",
    "signal_series",
    "mode_agreement",
]
#: A heatmap's x and y are its columns and rows, not points: left out of the points test.
HEATMAPS = ["signal_statistics"]


def test_every_figure_the_package_builds_is_checked_here(drawn):
    builders = {name for name in dashboards.__all__ if name.endswith("_figure")}
    assert (
        builders
        == {f"{name}_figure" for name in drawn}
        == {f"{name}_figure" for name in [*NAMES, "pd_split", *HEATMAPS]}
    )


@pytest.mark.parametrize("name", [*NAMES, "pd_split"])
def test_every_trace_has_points(drawn, name):
    figure = drawn[name]
    assert figure.data
    for trace in figure.data:
        assert len(trace.x) > 0 and len(trace.x) == len(trace.y), trace.name


@pytest.mark.parametrize("name", [*NAMES, "pd_split", *HEATMAPS])
def test_the_legend_names_every_trace_without_repeating_a_word(drawn, name):
    traces = drawn[name].data
    listed = {t.legendgroup or t.name for t in traces if t.showlegend is not False}
    for trace in traces:
        assert trace.name, trace
        assert (trace.legendgroup or trace.name) in listed, trace.name
        words = trace.name.split()
        assert len(words) == len(set(words)), trace.name  # no "svc decode decode TPS"


@pytest.mark.parametrize("name", [*NAMES, "pd_split", *HEATMAPS])
def test_axes_say_what_they_measure(drawn, name):
    layout = drawn[name].layout
    axes = [layout[key] for key in layout if key.startswith(("xaxis", "yaxis"))]
    assert any(axis.title.text for axis in axes if axis.plotly_name.startswith("x"))
    for axis in axes:
        if axis.plotly_name.startswith("y"):
            assert axis.title.text, axis.plotly_name


def test_telemetry_shows_gpu_util_per_role_and_decode_tps_against_offered_load(drawn):
    traces = {t.name: t for t in drawn["telemetry"].data}
    assert set(traces) == {
        "svc decode GPU util",
        "svc prefill GPU util",
        "svc decode tokens/s served",
        "svc offered output tokens/s",
    }
    assert list(traces["svc decode tokens/s served"].y) == pytest.approx(
        list(traces["svc offered output tokens/s"].y)
    )


def test_signal_bars_are_absolute_correlations_and_scale_in_responses(tables, drawn):
    scores = tables["signal_scores"].filter(pl.col("role") == "decode")
    correlation, scale_in = (t for t in drawn["signal_scores"].data if t.name == "svc decode")
    assert list(correlation.x) == scores["signal"].to_list()
    assert all(y is None or 0 <= y <= 1 for y in correlation.y)
    assert list(scale_in.y) == scores["scale_in_response"].to_list()


def test_decisions_are_step_lines_of_current_and_next_per_role(tables, drawn):
    decisions = tables["decisions"].sort("ts")
    traces = {t.name: t for t in drawn["decisions"].data}
    assert set(traces) == {
        f"{kind} {role}" for kind in ("current", "next") for role in ("prefill", "decode")
    }
    assert all(t.line.shape == "hv" for t in traces.values())
    assert list(traces["next decode"].y) == decisions["next_decode"].to_list()
    assert list(traces["current prefill"].y) == decisions["current_prefill"].to_list()
    assert list(traces["next prefill"].hovertext) == decisions["reason"].to_list()


def test_no_count_change_gives_a_figure_that_says_so(tables):
    figure = decisions_figure(tables["decisions"].clear())
    assert "no count changes" in figure.layout.annotations[-1].text


def test_placement_sums_instances_per_action_s2_and_gpu_type(drawn):
    bars = {
        (t.xaxis, t.name, s2): y
        for t in drawn["placement"].data
        for s2, y in zip(t.x, t.y, strict=True)
    }
    # Panels follow sorted action order: scale_in on axis x, scale_out on x2.
    assert bars == {
        ("x", "L20", "s2-a"): 2,
        ("x2", "H20", "s2-a"): 2,
        ("x2", "L20", "s2-a"): 3,
        ("x2", "L20", "s2-b"): 1,
    }


def test_an_empty_placement_gives_a_figure_that_says_so(tables):
    figure = placement_figure(tables["placement"].clear())
    assert not figure.data
    assert "no placement" in figure.layout.annotations[-1].text


def test_policies_plot_gpu_hours_against_attainment_with_their_cis(tables, drawn):
    summary = tables["fleet_summary"]
    traces = {t.name: t for t in drawn["policies"].data}
    assert set(summary["policy"]) < set(traces)
    for r in summary.iter_rows(named=True):
        trace = traces[r["policy"]]
        assert trace.x[0] == r["gpu_hours"]
        assert trace.y[0] == pytest.approx(100 * r["slo_attainment"])
        assert trace.x[0] - trace.error_x.arrayminus[0] == pytest.approx(r["gpu_hours_ci_low"])
        assert trace.x[0] + trace.error_x.array[0] == pytest.approx(r["gpu_hours_ci_high"])
        assert trace.y[0] + trace.error_y.array[0] == pytest.approx(
            100 * r["slo_attainment_ci_high"]
        )
    assert traces["oracle"].marker.symbol == "star"
    assert traces["heteroscale"].marker.symbol == "diamond"
    assert set(traces["SLO attainment target (99%)"].y) == {99.0}
    oracle_hours = summary.filter(pl.col("policy") == "oracle")["gpu_hours"].item()
    assert list(traces["1.1 x oracle GPU-hours"].x) == pytest.approx([1.1 * oracle_hours] * 2)


def test_timeline_draws_load_once_and_every_policys_instances_and_latency(tables, drawn):
    timeline = tables["fleet_timeline"].sort("ts")
    traces = drawn["timeline"].data
    policy = pl.col("policy")
    others = sorted(
        set(timeline.filter(~policy.str.starts_with("heteroscale_without_"))["policy"]) - set(SHOWN)
    )
    assert others  # the baselines, drawn on a click on their legend entry
    assert [t.name for t in traces] == [
        "offered requests/s",
        *(p for p in [*SHOWN, *others] for _ in range(4)),
        "TTFT p99 SLO (6 s)",
        "TBT p99 SLO (100 ms)",
    ]
    assert {t.name for t in traces if t.visible == "legendonly"} == set(others)
    assert list(traces[0].y) == timeline.filter(policy == "heteroscale")["offered_rps"].to_list()
    oracle = timeline.filter(policy == "oracle")
    by_axis = {t.yaxis: t for t in traces if t.name == "oracle"}
    assert list(by_axis["y3"].y) == oracle["decode_instances"].to_list()
    assert list(by_axis["y4"].y) == oracle["ttft_p99_s"].to_list()
    assert list(by_axis["y5"].y) == pytest.approx((1000 * oracle["tbt_p99_s"]).to_list())
    slo = {t.name: t for t in traces}
    assert (slo["TTFT p99 SLO (6 s)"].yaxis, set(slo["TTFT p99 SLO (6 s)"].y)) == ("y4", {6.0})
    assert (slo["TBT p99 SLO (100 ms)"].yaxis, set(slo["TBT p99 SLO (100 ms)"].y)) == (
        "y5",
        {100.0},
    )
    layout = drawn["timeline"].layout
    assert (layout.yaxis4.type, layout.yaxis4.title.text) == ("log", "s")
    assert (layout.yaxis5.type, layout.yaxis5.title.text) == ("log", "ms")


def test_timeline_refuses_a_policy_the_backtest_did_not_run(tables):
    with pytest.raises(ValueError, match="no_such_policy"):
        timeline_figure(
            tables["fleet_timeline"],
            tables["curated_policy"],
            shown=["heteroscale", "no_such_policy"],
        )


def test_mode_agreement_bars_are_the_request_rows_gaps(tables, drawn):
    request = tables["mode_agreement"].filter(pl.col("mode") == "request").sort("policy")
    bars = {t.name: t for t in drawn["mode_agreement"].data}
    assert list(bars) == ["GPU-hours", "GPU utilisation", "TTFT attainment", "TBT attainment"]
    assert bars["GPU-hours"].xaxis == "x" and bars["TBT attainment"].xaxis == "x2"
    for name, column in (
        ("GPU-hours", "gpu_hours_gap"),
        ("TTFT attainment", "ttft_attainment_gap"),
    ):
        assert list(bars[name].x) == request["policy"].to_list()
        assert list(bars[name].y) == pytest.approx((100 * request[column]).to_list())


def test_per_day_bars_are_each_policys_gpu_hours_per_day(tables, drawn):
    per_day = tables["fleet_per_day"]
    bars = [t for t in drawn["per_day"].data if t.type == "bar"]
    assert {t.name for t in bars} == set(per_day["policy"])
    for trace in bars:
        days = per_day.filter(pl.col("policy") == trace.name).sort("day")
        assert list(trace.x) == days["day"].to_list() == [1, 2]
        assert list(trace.y) == days["gpu_hours"].to_list()


def test_pd_split_marks_the_curated_ratio_on_the_sweep(tables, drawn):
    sweep, chosen = drawn["pd_split"].data
    rows = tables["pressure_sweep"].sort("prefill")
    per_instance = rows["decode_tps_within_slo"] / (rows["prefill"] + rows["decode"])
    assert list(sweep.y) == pytest.approx(per_instance.to_list())
    ratio = tables["curated_policy"]["pd_ratio"].item()
    decode = rows["decode"][0]
    assert chosen.x[0] == pytest.approx(ratio * decode)
    assert chosen.y[0] == pytest.approx(per_instance.max())  # curation kept the best split
