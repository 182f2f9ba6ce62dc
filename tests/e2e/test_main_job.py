"""The README's promise, end to end: `heteroscale run` on the embedded default leaves a store
holding telemetry, signal scores, the curated policy, every policy's fleet backtest, the chosen
policy's decisions and their placement, plus an HTML report whose every page draws in a browser;
and running it again replaces its results rather than duplicating them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dashboards import PAGES, page_path
from tests.dashboards.browser import SCREENSHOTS_ENV, drawn_figures, open_page, screenshot
from tests.dashboards.test_report import FIGURES

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("heteroscale")
#: Where the report's screenshots go when :data:`SCREENSHOTS_ENV` is set (docs/dashboards.md).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
TABLES = [
    "instance_samples",
    "service_load",
    "request_outcomes",
    "signal_scores",
    "signal_study",
    "signal_recommendation",
    "curated_policy",
    "curation_candidates",
    "pressure_sweep",
    "pd_ratios",
    "fleet_summary",
    "fleet_per_day",
    "fleet_timeline",
    "fleet_decisions",
    "mode_agreement",
    "scaling_decisions",
    "policy_spec",
    "placement_plan",
    "placement_outcomes",
]


def run_cli(out: Path) -> subprocess.CompletedProcess:
    # The run is recorded in DAGSTER_HOME, as `dg dev` would read it; here a throwaway one.
    env = {**os.environ, "DAGSTER_HOME": str(out / "dagster_home")}
    (out / "dagster_home").mkdir(exist_ok=True)
    done = subprocess.run(
        [str(CLI), "run", "--out", str(out), "--log-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def row_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_cli(out)


def test_run_leaves_every_table_and_the_report(first_run):
    out, done = first_run
    db = out / "heteroscale.duckdb"
    assert str(db) in done.stdout
    counts = row_counts(db)
    assert all(n > 0 for n in counts.values()), counts
    report = out / "heteroscale-report.html"
    assert str(report) in done.stdout
    for slug in PAGES:
        html = page_path(report, slug).read_text()
        assert "<script src=" not in html  # self-contained, offline
        assert ("Plotly.newPlot" in html) == bool(FIGURES[slug]), slug


def test_the_run_is_recorded_where_the_ui_reads_with_row_counts(first_run):
    out, done = first_run
    run_id = re.search(r"\(run ([0-9a-f-]+)\)", done.stdout).group(1)
    with dg.DagsterInstance.from_config(str(out / "dagster_home")) as ui:
        run = ui.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == "2024-01-01"  # the ServeGen day's telemetry
        entries = ui.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        materialised = {
            entry.dagster_event.asset_key.to_user_string(): entry.asset_materialization.metadata
            for entry in (record.event_log_entry for record in entries)
        }
    # Every asset that writes rows says how many; the report and the manifests are files.
    without_rows = {
        key for key, metadata in materialised.items() if "dagster/row_count" not in metadata
    }
    assert without_rows == {"dashboards/report_html", "policies/policy_exports"}
    assert len(materialised) == 13


def test_every_policy_is_backtested_and_the_chosen_one_is_placed(first_run):
    out, _ = first_run
    with duckdb.connect(str(out / "heteroscale.duckdb"), read_only=True) as conn:
        policies = {row[0] for row in conn.execute("SELECT policy FROM fleet_summary").fetchall()}
        moves = conn.execute(
            "SELECT count(*) FILTER (WHERE next_prefill + next_decode > current_prefill + "
            "current_decode), count(*) FILTER (WHERE next_prefill + next_decode < "
            "current_prefill + current_decode), count(*) FROM scaling_decisions"
        ).fetchone()
        cycles_placed = conn.execute(
            "SELECT count(DISTINCT cycle) FROM placement_outcomes WHERE cycle > 0"
        ).fetchone()[0]
        asked, short = conn.execute(
            "SELECT sum(requested_instances), sum(shortfall_instances) FROM placement_outcomes "
            "WHERE action = 'scale_out'"
        ).fetchone()
        violations = conn.execute(
            "SELECT count(*) FROM placement_plan WHERE NOT affinity_satisfied"
        ).fetchone()[0]
        modes = conn.execute("SELECT DISTINCT mode FROM mode_agreement").fetchall()
    assert {"heteroscale", "oracle", "static_peak", "hpa_gpu_util", "forecast_planner"} <= policies
    assert len(policies) == 13  # ten policies (two of them references) and three ablations
    # The week swings between night and day: the chosen policy scales both ways.
    scale_out, scale_in, decisions = moves
    assert scale_out > 0 and scale_in > 0
    # Cycle 0 places the starting cluster; every later decision is one placement cycle.
    assert cycles_placed == decisions
    # Scale-outs are placed (a scale-in a Deployment Group's ratio forbids is kept and reported:
    # docs/policy.md, "Placement").
    assert short <= 0.01 * asked
    assert violations == 0
    assert sorted(modes) == [("fast",), ("request",)]


def test_running_again_replaces_rather_than_duplicates(first_run):
    out, _ = first_run
    before = row_counts(out / "heteroscale.duckdb")
    run_cli(out)
    assert row_counts(out / "heteroscale.duckdb") == before


@pytest.mark.parametrize("slug", PAGES)
def test_every_page_of_the_report_draws_in_a_real_browser(first_run, slug, tmp_path):
    """With HETEROSCALE_WRITE_SCREENSHOTS=1, each page's first screen is written to
    docs/img/report-<page>.png: the screenshots the docs show."""
    out, _ = first_run
    page = page_path(out / "heteroscale-report.html", slug)
    run = open_page(page, tmp_path)
    assert run.errors == []
    assert page.read_text(encoding="utf-8").count('class="plotly-graph-div"') == FIGURES[slug]
    assert drawn_figures(run.dom) == FIGURES[slug]
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        screenshot(page, SCREENSHOTS / f"report-{slug}.png")
