"""The ``heteroscale`` command line: one subcommand per module of :mod:`heteroscale.commands`."""

import argparse

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
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
