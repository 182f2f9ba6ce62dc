"""The README's Quickstart is the newcomer's contract: exactly two commands, run then test,
and CI runs the second one as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    quickstart = (ROOT / "README.md").read_text().split("\n## Quickstart\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", quickstart, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_holds_exactly_run_then_test():
    assert quickstart_commands() == ["./dev run", "./dev test"]


def test_dev_maps_the_commands_to_the_cli_and_pytest():
    script = (ROOT / "dev").read_text()
    assert re.search(r'run\)\s+exec "\$venv/bin/heteroscale" run', script)
    assert re.search(r'test\)\s+exec "\$venv/bin/python" -m pytest', script)


def test_ci_runs_the_readmes_test_command_not_a_copy():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci and "./dev test" not in ci
