"""write_report: offline HTML pages linked from the index, the decision first, every figure on
its page, text from the tables."""

import re

import polars as pl
import pytest

from dashboards import PAGES, page_path, write_report

#: Figures per page, in navigation order; the overview is words only.
FIGURES = {"overview": 0, "signals": 4, "policy": 5, "placement": 1, "telemetry": 1, "fidelity": 1}
#: Titles of the signal study's figures, in page order.
SIGNAL_FIGURES = (
    "Signal study: every candidate",
    "Candidate signals against their role",
    "Best-ranked signals of each role",
    "Candidate signals scored against offered load",
)


def figures(page: str) -> int:
    return page.count('class="plotly-graph-div"')


@pytest.fixture(scope="module")
def pages(tables, tmp_path_factory):
    """Every page of the fixture's report, by slug."""
    index = write_report(tmp_path_factory.mktemp("report") / "nested" / "report.html", **tables)
    return {slug: page_path(index, slug).read_text(encoding="utf-8") for slug in PAGES}


def test_the_index_is_the_overview_and_every_page_sits_beside_it(tables, tmp_path):
    path = write_report(tmp_path / "nested" / "report.html", **tables)
    assert path == tmp_path / "nested" / "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["report.html"] + [f"report-{slug}.html" for slug in list(PAGES)[1:]]
    )
    assert list(FIGURES) == list(PAGES)


def test_every_page_is_self_contained_with_its_figures(pages):
    for slug, page in pages.items():
        assert figures(page) == FIGURES[slug], slug
        # plotly.js itself, once, on a page with figures; no script at all on one without.
        assert page.count("plotly.js v") == (1 if FIGURES[slug] else 0), slug
        assert re.search(r"<script[^>]*\bsrc=", page) is None, slug  # nothing from a CDN
        if FIGURES[slug]:
            assert page.index("plotly.js v") < page.index('class="plotly-graph-div"')


def test_every_page_links_every_page_and_marks_itself(pages):
    for slug, page in pages.items():
        nav = re.search(r"<nav>(.*?)</nav>", page).group(1)
        links = re.findall(r"<a href='([^']+)'( class=here)?>([^<]+)</a>", nav)
        assert [(href, title) for href, _, title in links] == [
            ("report.html" if s == "overview" else f"report-{s}.html", t) for s, t in PAGES.items()
        ]
        assert [title for _, here, title in links if here] == [PAGES[slug]]
        assert f"<h1>{PAGES[slug]}</h1>" in page
        assert "for service <b>svc</b>" in page


def test_the_first_screen_is_the_decision(pages):
    page = pages["overview"]
    card = re.search(r"<table class=card>(.*?)</table>", page, re.S).group(1)
    labels = re.findall(r"<th>([^<]+)</th>", card)
    assert labels == [
        "SLO",
        "Publication gate",
        "Signal",
        "Configuration",
        "Against static_peak",
        "Against static_hindsight",
        "Against the best baseline at the SLO",
        "Targets",
    ]
    assert in_order(
        page,
        "<table class=card>",
        "<h2>Signal</h2>",
        "The signal study recommends ",
        "<h2>Chosen policy</h2>",
        "heteroscale meets ",
        "Publication gate ",
        "<h2>Savings</h2>",
        "<h2>Targets</h2>",
        "<h2>Policies that miss the SLO</h2>",
    )


def in_order(page: str, *texts: str) -> bool:
    """Each text occurs in the page after the one before it."""
    at = 0
    for text in texts:
        at = page.find(text, at)
        if at < 0:
            return False
    return True


def test_each_page_carries_its_findings(pages):
    assert "svc decode: decode_tps tracks offered load best" in pages["signals"]
    assert in_order(pages["signals"], *SIGNAL_FIGURES)
    policy = pages["policy"]
    assert "Controller: " in policy and "<h2>Ablations: what each mechanism is worth</h2>" in policy
    assert "<dt>Deployment Group</dt>" in pages["placement"]
    assert "Placement: 2 cycle(s)" in pages["placement"]
    assert "No telemetry was ingested into this store" in pages["telemetry"]
    assert "Telemetry: 8 instances (4 decode, 4 prefill)" in pages["telemetry"]
    assert "Request level minus fast mode on the same" in pages["fidelity"]
    assert "docs/simulator.md (section Fidelity)" in pages["fidelity"]


def test_without_the_paired_series_the_signal_page_shows_the_statistics_alone(tables, tmp_path):
    without = {k: v for k, v in tables.items() if k != "signal_series"}
    index = write_report(tmp_path / "report.html", **without)
    page = page_path(index, "signals").read_text(encoding="utf-8")
    assert figures(page) == FIGURES["signals"] - 2
    assert SIGNAL_FIGURES[0] in page and SIGNAL_FIGURES[3] in page
    assert not any(title in page for title in SIGNAL_FIGURES[1:3])


def test_a_miss_reaches_the_first_screen_plainly(tables, tmp_path):
    summary = tables["fleet_summary"].with_columns(
        pl.when(pl.col("policy") == "heteroscale").then(0.9712).otherwise(pl.col(name)).alias(name)
        for name in ("tbt_attainment", "slo_attainment")
    )
    page = write_report(
        tmp_path / "report.html", **(tables | {"fleet_summary": summary})
    ).read_text(encoding="utf-8")
    assert "<tr class=fail><th>SLO</th><td>MISSED by 1.88 points (TBT): TTFT p99" in page
    assert "<tr class=fail><th>Publication gate</th><td>FAILED: " in page
    assert "<li class=miss>MISS by 1.88 points (TBT): SLO attainment &gt;= 99%" in page
    assert "<li class=miss>Publication gate FAILED: " in page


def test_tables_of_several_services_are_refused_and_nothing_is_written(tables, tmp_path):
    mixed = pl.concat(
        [tables["fleet_summary"], tables["fleet_summary"].with_columns(service=pl.lit("other"))]
    )
    with pytest.raises(ValueError, match=r"one service, got \['other', 'svc'\]"):
        write_report(tmp_path / "report.html", **(tables | {"fleet_summary": mixed}))
    assert not list(tmp_path.iterdir())
