"""Progress bars for the commands' long work, drawn on stderr only when it is a terminal.

Library code takes an optional ``progress`` wrapper (:data:`policies.parallel.Progress`) and
runs unchanged without one; the commands pass :func:`bar`. Piped, redirected, under Dagster or
in tests, the bars are off and stdout stays the command's output alone.
"""

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(items: Iterable[T], *, total: int, desc: str) -> Iterable[T]:
    """``items`` as they are, counted on a bar that disappears when the loop ends."""
    return tqdm(items, total=total, desc=desc, leave=False, **_where())


def steps(total: int, desc: str) -> tqdm:
    """A bar for work done in ``total`` named steps: ``set_postfix_str`` names the step,
    ``update`` finishes it."""
    shown = "{desc}: step {n_fmt}/{total_fmt}{postfix} [{elapsed}]"
    return tqdm(total=total, desc=desc, leave=False, bar_format=shown, **_where())


def _where() -> dict:
    return {"file": sys.stderr, "disable": not sys.stderr.isatty()}
