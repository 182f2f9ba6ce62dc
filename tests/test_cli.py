"""Every command answers --help, and the top-level help lists them all."""

import subprocess
import sys
from pathlib import Path

import pytest

from heteroscale.cli import COMMANDS, build_parser

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
