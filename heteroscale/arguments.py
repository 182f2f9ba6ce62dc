"""Argument types the commands share, so a bad number is refused as argparse refuses any bad
argument: one usage line and exit code 2, before any work starts."""

import argparse
import math


def positive(text: str) -> float:
    """A finite number > 0 (a window, a latency objective, an interval)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"want a number > 0, got {text!r}")
    return value
