"""The ``heteroscale`` command line: one subcommand per module of :mod:`heteroscale.commands`.

Bad input (a missing or unreadable file, a file that is not a store, a trace or YAML, a store
without what a command needs) ends the command with one line on stderr and exit code 2, never a
traceback: a handler raises, and :func:`main` says what went wrong (``ingest`` answers its own
errors, with exit code 1).
"""

import argparse
import os
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from heteroscale.commands import (
    advise,
    backtest,
    export,
    fidelity,
    ingest,
    place,
    report,
    run,
    simulate,
    study,
)

#: Registered subcommands, in the order ``--help`` lists them.
COMMANDS = [run, study, backtest, export, advise, ingest, simulate, fidelity, place, report]


def version() -> str:
    """The installed distribution's version; run from a checkout that was never installed,
    the version its pyproject.toml declares (the number's one home)."""
    try:
        return metadata.version("heteroscale")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heteroscale",
        description="Coordinated autoscaling study, policy and placement for P/D LLM serving.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:
        # The reader left (``heteroscale study --json | head``): not an error of ours, and no
        # traceback. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:
        if not isinstance(error, _bad_input()):
            raise
        print(f"heteroscale {args.command}: {one_line(error)}", file=sys.stderr)
        return 2


def _bad_input() -> tuple[type[Exception], ...]:
    """What bad input raises: files (OSError), content the project's readers refuse
    (ValueError and its subclasses), and the readers of stores, YAML and tables underneath."""
    import duckdb
    import polars as pl
    import yaml

    return OSError, ValueError, duckdb.Error, yaml.YAMLError, pl.exceptions.PolarsError


def one_line(error: Exception) -> str:
    """The error as one line: a file error names the file, a YAML error where it stopped."""
    import yaml

    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"not valid YAML: {error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(error).split())


if __name__ == "__main__":
    raise SystemExit(main())
