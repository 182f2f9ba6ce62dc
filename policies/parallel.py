"""Independent runs over processes: curation's candidates, the backtest's policies, and the
policy jobs of a store's services (:func:`pipelines.run.run_policy_jobs`).

Each item runs alone from what it is given, so results do not depend on how many processes ran
them. Workers start by forkserver: fresh processes that import what they need, not forks of one
that may hold threads (DuckDB's, BLAS's).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Shows a loop's progress: ``progress(items, total=n, desc=what)`` yields ``items`` unchanged
#: (e.g. a terminal bar). The long loops of curation and the fleet backtest take one; without
#: it they run as they are.
Progress = Callable[..., Iterable]


def spread(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int = 1,
    progress: Progress | None = None,
    desc: str = "",
) -> list[Result]:
    """``function`` of each item, in order: in this process with one worker, else over up to
    ``workers`` processes (``function`` and the items must pickle). ``progress`` wraps the
    results as they come."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    items = list(items)

    def shown(results: Iterable[Result]) -> list[Result]:
        if progress is not None:
            results = progress(results, total=len(items), desc=desc)
        return list(results)

    if workers == 1 or len(items) <= 1:
        return shown(map(function, items))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=context) as pool:
        return shown(pool.map(function, items))
