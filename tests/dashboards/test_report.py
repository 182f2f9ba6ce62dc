"""write_report: one offline HTML page with a computed summary and every figure."""

import re

import polars as pl

from dashboards import summary_lines, write_report


def test_report_is_self_contained_with_all_figures(tables, tmp_path):
    path = write_report(tmp_path / "nested" / "report.html", **tables)
    assert path == tmp_path / "nested" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert "plotly.js v" in page  # the bundle itself ...
    assert page.count("plotly.js v") == 1  # ... once
    assert re.search(r"<script[^>]*\bsrc=", page) is None  # ... and no script from a CDN
    assert page.count('class="plotly-graph-div"') == 5
    assert "<h1>HeteroScale report</h1>" in page
    assert not list(tmp_path.glob("nested/*.partial"))


def test_summary_is_computed_from_the_tables(tables):
    lines = summary_lines(
        instance_samples=tables["instance_samples"],
        signal_scores=tables["signal_scores"],
        decisions=tables["decisions"],
        placement=tables["placement"],
        backtest_summary=tables["backtest_summary"],
    )
    text = "\n".join(lines)
    decisions = tables["decisions"]
    scale_outs = decisions.filter(pl.col("action") == "scale_out").height
    scale_ins = decisions.filter(pl.col("action") == "scale_in").height
    assert scale_outs and scale_ins
    assert f"{scale_outs} scale-outs and {scale_ins} scale-ins over {decisions.height}" in text
    assert "Telemetry: 1 service(s), 8 instances" in text
    assert "Placement: 8 instances in 4 rows across 2 S2 pod(s)." in text
    assert (
        "svc backtest (closed loop): 6.0 GPU-hours against 8.0 fixed (-25.0%); GPU utilisation"
        " 70.0% against 65.0% (+5.0 points); TTFT p99 1.75 s against 1.50 s; TPOT p99 32.0 ms"
        " against 30.0 ms."
    ) in text
    decode_line = next(line for line in lines if line.startswith("svc decode:"))
    # Decode TPS is exactly proportional to load; decode GPU util sits near 0.88 throughout.
    assert decode_line.startswith(
        "svc decode: decode_tps tracks offered load best (Pearson r = 1.00"
    )
    assert "gpu_util_ratio gives up least at low load" in decode_line
