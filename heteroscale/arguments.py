"""Argument types the commands share, so a bad number is refused as argparse refuses any bad
argument: one usage line and exit code 2, before any work starts."""

import argparse
import math
from pathlib import Path


def positive(text: str) -> float:
    """A finite number > 0 (a window, a latency objective, an interval)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"want a number > 0, got {text!r}")
    return value


def at_least_one(text: str) -> int:
    """A whole number >= 1 (a count of workers)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"want a whole number >= 1, got {text!r}")
    return value


def non_negative(text: str) -> float:
    """A finite number >= 0 (a delay that may be none)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"want a number >= 0, got {text!r}")
    return value


def add_trace(parser: argparse.ArgumentParser, what: str, *, required: bool = False) -> None:
    """``--trace`` (a request trace file, ``what`` it is for) and its ``--format``."""
    from simulator.workloads import TRACE_FORMATS

    parser.add_argument("--trace", type=Path, required=required, help=what)
    parser.add_argument(
        "--format", choices=TRACE_FORMATS, default="azure", help="its format (default azure)"
    )


def add_cluster(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--cluster``: a cluster file (``what`` is done with it), else the embedded cluster."""
    parser.add_argument(
        "--cluster",
        type=Path,
        help=f"cluster YAML (docs/simulator.md, 'Your own cluster'){what}; default: the "
        "embedded L20/H20 cluster",
    )
