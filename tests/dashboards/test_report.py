"""write_report: one offline HTML page, the decision first, every figure, text from the tables."""

import re

import polars as pl
import pytest

from dashboards import telemetry_lines, write_report

FIGURES = 11
#: Titles of the signal study's figures, in page order.
SIGNAL_FIGURES = (
    "Signal study: every candidate",
    "Candidate signals against their role",
    "Best-ranked signals of each role",
)


def test_report_is_self_contained_with_all_figures(tables, tmp_path):
    path = write_report(tmp_path / "nested" / "report.html", **tables)
    assert path == tmp_path / "nested" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert "plotly.js v" in page  # the bundle itself ...
    assert page.count("plotly.js v") == 1  # ... once
    assert re.search(r"<script[^>]*\bsrc=", page) is None  # ... and no script from a CDN
    assert page.count('class="plotly-graph-div"') == FIGURES
    assert "<h1>HeteroScale report</h1>" in page
    assert not list(tmp_path.glob("nested/*.partial"))


def test_the_decision_comes_first_and_the_telemetry_after_it(tables, tmp_path):
    page = write_report(tmp_path / "report.html", **tables).read_text(encoding="utf-8")
    order = [
        page.index("<h2>Decision</h2>"),
        page.index("<h3>Signal</h3>"),
        page.index("The signal study recommends "),
        page.index("<h3>Chosen policy</h3>"),
        page.index("heteroscale meets "),
        page.index("<h3>Targets</h3>"),
        page.index("Evaluation days: offered load"),
        page.index("<h2>The signal study</h2>"),
        *(page.index(title) for title in SIGNAL_FIGURES),
        page.index("<h2>Telemetry, signals and placement</h2>"),
        page.index("Telemetry: 1 service(s)"),
    ]
    assert order == sorted(order)
    # plotly.js comes with the page's first figure, before any figure needs it.
    assert page.index("plotly.js v") < page.index('class="plotly-graph-div"')


def test_without_the_paired_series_the_signal_section_shows_the_statistics_alone(tables, tmp_path):
    without = {k: v for k, v in tables.items() if k != "signal_series"}
    page = write_report(tmp_path / "report.html", **without).read_text(encoding="utf-8")
    assert page.count('class="plotly-graph-div"') == FIGURES - 2
    assert SIGNAL_FIGURES[0] in page
    assert not any(title in page for title in SIGNAL_FIGURES[1:])


def test_a_miss_reaches_the_page_plainly(tables, tmp_path):
    summary = tables["fleet_summary"].with_columns(
        pl.when(pl.col("policy") == "heteroscale").then(0.9712).otherwise(pl.col(name)).alias(name)
        for name in ("tbt_attainment", "slo_attainment")
    )
    page = write_report(
        tmp_path / "report.html", **(tables | {"fleet_summary": summary})
    ).read_text(encoding="utf-8")
    assert "<li class=miss>MISS by 1.88 points (TBT): SLO attainment &gt;= 99%" in page


def test_tables_of_several_services_are_refused(tables, tmp_path):
    mixed = pl.concat(
        [tables["fleet_summary"], tables["fleet_summary"].with_columns(service=pl.lit("other"))]
    )
    with pytest.raises(ValueError, match="mix services"):
        write_report(tmp_path / "report.html", **(tables | {"fleet_summary": mixed}))
    assert not (tmp_path / "report.html").exists()


def test_telemetry_lines_are_computed_from_the_tables(tables):
    decisions = tables["decisions"]
    lines = telemetry_lines(
        instance_samples=tables["instance_samples"],
        signal_scores=tables["signal_scores"],
        decisions=decisions,
        placement=tables["placement"],
    )
    text = "\n".join(lines)
    change = (pl.col("next_prefill") + pl.col("next_decode")) - (
        pl.col("current_prefill") + pl.col("current_decode")
    )
    outs, ins = (decisions.filter(keep).height for keep in (change > 0, change < 0))
    assert outs and ins
    assert f"Controller: {decisions.height} count changes over the evaluation days: " in text
    assert f"{outs} scale-outs, {ins} scale-ins" in text
    decode = pl.concat([decisions["current_decode"], decisions["next_decode"]])
    assert f"decode {decode.min()} to {decode.max()} instances" in text
    assert "Telemetry: 1 service(s), 8 instances" in text
    assert "Placement: 8 instances in 4 rows across 2 S2 pod(s)." in text
    decode_line = next(line for line in lines if line.startswith("svc decode:"))
    # Decode TPS is exactly proportional to load; decode GPU util sits near 0.88 throughout.
    assert decode_line.startswith(
        "svc decode: decode_tps tracks offered load best (Pearson r = 1.00"
    )
    assert "gpu_util_ratio gives up least at low load" in decode_line
