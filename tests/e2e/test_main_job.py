"""The README's promise, end to end: `heteroscale run` on the embedded default leaves a store
holding telemetry, signal scores, the curated policy, every policy's fleet backtest, the chosen
policy's decisions and their placement, plus an HTML report; and running it again replaces its
results rather than duplicating them."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.dashboards.browser import drawn_figures, open_page
from tests.dashboards.test_report import FIGURES

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("heteroscale")
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
    done = subprocess.run(
        [str(CLI), "run", "--out", str(out), "--log-level", "WARNING"],
        capture_output=True,
        text=True,
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
    html = report.read_text()
    assert str(report) in done.stdout
    assert "Plotly.newPlot" in html and "<script src=" not in html  # self-contained, offline


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
    assert len(policies) == 12  # nine policies and three ablations
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


def test_the_report_draws_in_a_real_browser(first_run, tmp_path):
    out, _ = first_run
    page = out / "heteroscale-report.html"
    run = open_page(page, tmp_path)
    assert run.errors == []
    figures = page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert figures == FIGURES
    assert drawn_figures(run.dom) == figures
