"""The README's promise, end to end: `heteroscale run` on the embedded default leaves a store
holding telemetry, signal scores, scaling decisions and a placement, plus an HTML report; and
running it again replaces its results rather than duplicating them."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.dashboards.browser import drawn_figures, open_page

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("heteroscale")
TABLES = [
    "instance_samples",
    "service_load",
    "request_outcomes",
    "signal_scores",
    "scaling_decisions",
    "placement_plan",
    "placement_outcomes",
    "backtest_decisions",
    "backtest_placement_plan",
    "backtest_summary",
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


def test_the_policy_reacts_to_the_traces_swing_and_placement_follows(first_run):
    out, _ = first_run
    with duckdb.connect(str(out / "heteroscale.duckdb"), read_only=True) as conn:
        actions = dict(
            conn.execute("SELECT action, count(*) FROM scaling_decisions GROUP BY 1").fetchall()
        )
        cycles_placed = conn.execute(
            "SELECT count(DISTINCT cycle) FROM placement_plan WHERE cycle > 0"
        ).fetchone()[0]
        shortfall = conn.execute(
            "SELECT sum(shortfall_instances) FROM placement_outcomes"
        ).fetchone()[0]
        violations = conn.execute(
            "SELECT count(*) FROM placement_plan WHERE NOT affinity_satisfied"
        ).fetchone()[0]
    # The Azure conversation trace swings 2.6x within the hour (data/traces/README.md).
    assert actions.get("scale_out", 0) > 0 and actions.get("scale_in", 0) > 0, actions
    # Cycle 0 places the starting cluster; every later scale action, and only those, moves it.
    assert cycles_placed == actions["scale_out"] + actions["scale_in"]
    assert shortfall == 0
    assert violations == 0


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
    assert figures == 5
    assert drawn_figures(run.dom) == figures
