"""Spreading independent runs over processes: the same results, in order, computed elsewhere."""

import os

import pytest

from policies.parallel import spread


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_workers_compute_the_same_results_in_order_in_other_processes():
    serial = spread(square_and_pid, range(6))
    spread_out = spread(square_and_pid, range(6), workers=2)
    assert [r for r, _ in spread_out] == [r for r, _ in serial] == [0, 1, 4, 9, 16, 25]
    assert {pid for _, pid in serial} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in spread_out}


def test_progress_sees_every_result():
    seen = []

    def progress(results, total, desc):
        assert (total, desc) == (3, "runs")
        for result in results:
            seen.append(result)
            yield result

    assert spread(square_and_pid, [1, 2, 3], workers=2, progress=progress, desc="runs") == seen


def test_no_worker_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        spread(square_and_pid, [1], workers=0)
