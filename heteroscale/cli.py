"""The ``heteroscale`` command line: one subcommand per module of :mod:`heteroscale.commands`."""

import argparse
import os
import sys

from heteroscale.commands import (
    advise,
    backtest,
    export,
    fidelity,
    ingest,
    place,
    run,
    simulate,
    study,
)

#: Registered subcommands, in the order ``--help`` lists them.
COMMANDS = [run, study, backtest, export, advise, ingest, simulate, fidelity, place]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heteroscale",
        description="Coordinated autoscaling study, policy and placement for P/D LLM serving.",
    )
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


if __name__ == "__main__":
    raise SystemExit(main())
