"""Figure builders: every trace carries data, and the data is the table's."""

import polars as pl
import pytest

from dashboards import decisions_figure, placement_figure, signal_scores_figure, telemetry_figure


def figures(tables):
    return {
        "telemetry": telemetry_figure(tables["instance_samples"], tables["service_load"]),
        "signals": signal_scores_figure(tables["signal_scores"]),
        "decisions": decisions_figure(tables["decisions"]),
        "placement": placement_figure(tables["placement"]),
    }


@pytest.mark.parametrize("name", ["telemetry", "signals", "decisions", "placement"])
def test_every_trace_has_points(tables, name):
    figure = figures(tables)[name]
    assert figure.data
    for trace in figure.data:
        assert len(trace.x) > 0 and len(trace.x) == len(trace.y), trace.name


def test_telemetry_shows_gpu_util_per_role_and_decode_tps_against_offered_load(tables):
    traces = {
        t.name: t for t in telemetry_figure(tables["instance_samples"], tables["service_load"]).data
    }
    assert set(traces) == {
        "svc decode",
        "svc prefill",
        "svc decode decode TPS",
        "svc offered output TPS",
    }
    assert list(traces["svc decode decode TPS"].y) == pytest.approx(
        list(traces["svc offered output TPS"].y)
    )


def test_signal_bars_are_absolute_correlations_and_scale_in_responses(tables):
    scores = tables["signal_scores"].filter(pl.col("role") == "decode")
    correlation, scale_in = (
        t for t in signal_scores_figure(tables["signal_scores"]).data if t.name == "svc decode"
    )
    assert list(correlation.x) == scores["signal"].to_list()
    assert all(y is None or 0 <= y <= 1 for y in correlation.y)
    assert list(scale_in.y) == scores["scale_in_response"].to_list()


def test_decisions_are_step_lines_of_current_and_target_per_role(tables):
    figure = decisions_figure(tables["decisions"])
    assert {t.name for t in figure.data} == {
        f"svc {kind} {role}" for kind in ("current", "target") for role in ("prefill", "decode")
    }
    assert all(t.line.shape == "hv" for t in figure.data)
    target_decode = next(t for t in figure.data if t.name == "svc target decode")
    assert list(target_decode.y) == tables["decisions"]["target_decode"].to_list()


def test_placement_sums_instances_per_action_s2_and_gpu_type(tables):
    bars = {
        (t.xaxis, t.name, s2): y
        for t in placement_figure(tables["placement"]).data
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
