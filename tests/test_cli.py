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
