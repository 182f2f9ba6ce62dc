"""Every command answers --help, the top-level help lists them all, --version says which
version runs, and bad input is one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import duckdb
import pytest

from heteroscale import cli
from heteroscale.cli import COMMANDS, build_parser, main
from scheduler import FLEET_TOPOLOGY_PATH

CLI = Path(sys.executable).with_name("heteroscale")
NAMES = sorted(build_parser()._subparsers._group_actions[0].choices)


def test_top_level_help_lists_every_command():
    done = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, check=True)
    assert len(NAMES) == len(COMMANDS)
    for name in NAMES:
        assert f"    {name}" in done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_help(name):
    done = subprocess.run([str(CLI), name, "--help"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith(f"usage: heteroscale {name}")


#: A command whose output outlasts its reader, run through ``main`` as ``heteroscale`` runs it.
LONG_OUTPUT = """
import argparse, sys
import heteroscale.cli as cli

def handler(args):
    for _ in range(200_000):
        print("a line of a long table")
    return 0

class Parser:
    def parse_args(self, argv):
        return argparse.Namespace(handler=handler)

cli.build_parser = Parser
raise SystemExit(cli.main([]))
"""


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``heteroscale study --json | head``: the pipe closes under the command."""
    done = subprocess.run(
        f"'{sys.executable}' -c '{LONG_OUTPUT}' | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout == "a line of "
    assert done.stderr == ""


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"heteroscale {metadata.version('heteroscale')}\n"


def test_a_checkout_never_installed_reads_its_version_from_pyproject(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", not_installed)
    pyproject = tomllib.loads((Path(cli.__file__).parents[1] / "pyproject.toml").read_text())
    assert cli.version() == pyproject["project"]["version"]


@pytest.fixture
def files(tmp_path):
    """Bad input of every kind: a store that is not one, a store with no tables, a folder,
    broken YAML, YAML that is not a policy spec, a folder with no benchmark run."""
    (tmp_path / "text.duckdb").write_text("not a store")
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken.yaml").write_text("{")
    (tmp_path / "other.yaml").write_text("service: chat\n")
    return tmp_path


#: Command lines (``{d}``: the fixture's folder) and what their one line of error says.
BAD_INPUT = [
    (["study", "--db", "{d}/text.duckdb"], "not a valid DuckDB database file"),
    (["study", "--db", "{d}/folder"], "Is a directory"),
    (["study", "--db", "{d}/empty.duckdb"], "no telemetry in"),
    (["backtest", "--days", "1"], "--days must be at least 2"),
    (["backtest", "--trace", "{d}/none.csv"], "none.csv"),
    (["export", "--format", "policy", "--out", "{d}/o", "--db", "{d}/text.duckdb"], "DuckDB"),
    (["export", "--format", "policy", "--out", "{d}/o", "--db", "{d}/empty.duckdb"], "no curated"),
    (["advise", "--db", "{d}/folder"], "Is a directory"),
    (["advise", "--db", "{d}/empty.duckdb", "--spec", "{d}/broken.yaml"], "broken.yaml: not valid"),
    (["advise", "--db", "{d}/empty.duckdb", "--spec", "{d}/other.yaml"], "other.yaml: policy spec"),
    (["advise", "--db", "{d}/empty.duckdb", "--spec", "{d}/none.yaml"], "none.yaml: No such file"),
    (["fidelity", "--bench-dir", "{d}/folder"], "no run folder"),
    (["place", "--topology", "{d}/broken.yaml", "--decisions", "{d}/x.csv"], "broken.yaml"),
    (["place", "--topology", str(FLEET_TOPOLOGY_PATH), "--decisions", "{d}/text.duckdb"], "DuckDB"),
    (["report", "--db", "{d}/none.duckdb"], "no store at"),
    (["report", "--db", "{d}/text.duckdb"], "not a valid DuckDB database file"),
    (["report", "--db", "{d}/empty.duckdb"], "holds none of the report's tables"),
]


@pytest.mark.parametrize(("argv", "says"), BAD_INPUT, ids=[f"{a[0]}: {s}" for a, s in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(files, capsys, argv, says):
    assert main([arg.format(d=files) for arg in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"heteroscale {argv[0]}: ")
    assert says in err


def test_a_broken_mapping_is_one_line_from_ingest(files, capsys):
    argv = ["ingest", str(files / "folder"), "--mapping", str(files / "broken.yaml")]
    assert main([*argv, "--db", str(files / "ingested.duckdb")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.yaml: cannot read the mapping" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "--window", "-5"],
        ["study", "--ttft-slo-s", "0"],
        ["backtest", "--tbt-slo-s", "nan"],
        ["advise", "--startup-s", "-1"],
        ["ingest", "x.prom", "--interval", "0"],
        ["report", "--window", "inf"],
    ],
)
def test_a_bad_number_is_refused_before_any_work(capsys, argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"want a number > 0, got {argv[-1]!r}")
