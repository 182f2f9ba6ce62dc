"""Progress bars: drawn on a terminal only, and the long loops report through an optional
wrapper that passes their items through unchanged."""

import io

import pytest

from heteroscale import progress
from policies.fleet import run_fleet_backtest, trace_scenario
from policies.registry import select
from simulator import DEFAULT_TRACE_PATH, load_trace


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stderr", [Terminal(), io.StringIO()], ids=["terminal", "pipe"])
def test_bars_are_drawn_on_a_terminal_only(monkeypatch, stderr):
    monkeypatch.setattr("sys.stderr", stderr)
    assert list(progress.bar(range(3), total=3, desc="sweep")) == [0, 1, 2]
    with progress.steps(2, "study") as step:
        step.set_postfix_str("reading")
        step.update(2)
    drawn = stderr.getvalue()
    assert ("sweep:" in drawn and "study:" in drawn) == isinstance(stderr, Terminal)


def test_the_backtest_reports_its_curation_sweep_and_then_each_policy():
    seen = []

    def spy(items, *, total, desc):
        seen.append((desc, total))
        yield from items

    scenario = trace_scenario(load_trace(DEFAULT_TRACE_PATH, "azure"))
    grid = {"utilisation_target": (0.75, 0.8), "scale_in_cooldown_s": (300.0,)}
    backtest = run_fleet_backtest(
        scenario, select(["static_peak", "oracle"]), grid=grid, progress=spy
    )
    assert seen == [("curation", 2), ("policies", 2)]
    assert set(backtest.runs) == {"static_peak", "oracle"}
    assert backtest.curation.candidates.height == 2
