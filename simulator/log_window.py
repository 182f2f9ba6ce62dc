"""The part of a running simulation's event logs that the next intervals' telemetry needs.

A closed loop asks, again and again, for the telemetry of the intervals completed since its last
call. Reading the whole log each time makes a call cost time in proportion to the run so far,
which is fine for hours and not for days. :class:`LogWindow` keeps between calls only the rows
that can still count in a later interval (passes not over yet, decode strides logged since the
previous call, point events stamped at or after the window's end, each instance's last gauge
change before it) and hands back those plus the rows logged since. With
:class:`simulator.metrics.Bins` covering only the new intervals, a call then costs time in
proportion to those intervals' events. It reads the recorder's logs in place.

Times stay absolute and the rows keep their log order, so every per-interval sum adds the same
terms in the same order as over the whole log: the telemetry is identical, not just close.
"""

from __future__ import annotations

import numpy as np

from simulator.recorder import Recorder

#: Logs of point-like rows: their columns, and how to get the last instant a row counts at.
_ROW_LOGS = {
    "pass": (
        (
            "pass_instance",
            "pass_start_s",
            "pass_duration_s",
            "pass_sm_active_fraction",
            "pass_batch_size",
            "pass_decode_tokens",
        ),
        lambda log: np.add(log["pass_start_s"], log["pass_duration_s"]),
    ),
    "prefill": (
        ("prefill_instance", "prefill_end_s", "prefill_total_tokens", "prefill_missed_tokens"),
        lambda log: np.asarray(log["prefill_end_s"], dtype=float),
    ),
    "ttft": (
        ("ttft_instance", "ttft_at_s", "ttft_s"),
        lambda log: np.asarray(log["ttft_at_s"], dtype=float),
    ),
}
#: Gauge change logs: instance, time and value columns.
_GAUGE_LOGS = (
    ("queue_instance", "queue_at_s", "queue_depth"),
    ("kv_instance", "kv_at_s", "kv_usage_ratio"),
)


def _gauge_rows_still_counting(instance: list, at_s: list, end_s: float) -> np.ndarray:
    """Indices (log order) of the changes at or after ``end_s`` and of each instance's last
    change before it, in the order :func:`simulator.metrics._gauge_integral` sorts them."""
    inst = np.asarray(instance, dtype=np.int64)
    at = np.asarray(at_s, dtype=float)
    if inst.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((at, inst))
    inst_sorted, at_sorted = inst[order], at[order]
    next_differs = np.append(inst_sorted[1:] != inst_sorted[:-1], True)
    next_after = np.append(at_sorted[1:] >= end_s, True)
    last_before = (at_sorted < end_s) & (next_differs | next_after)
    return np.sort(order[last_before | (at_sorted >= end_s)])


class LogWindow:
    """Rows of ``source``'s logs that the telemetry of intervals not yet computed may need."""

    def __init__(self, source: Recorder) -> None:
        self._source = source
        self._kept = Recorder()
        self._cursor: dict[str, int] = {}
        self._previous_strides: list[tuple] = []

    def _new_rows(self, column: str) -> list:
        rows = getattr(self._source, column)
        start, self._cursor[column] = self._cursor.get(column, 0), len(rows)
        return rows[start:]

    def take(self, end_s: float) -> Recorder:
        """The rows for intervals from the previous call's ``end_s`` up to ``end_s``: those
        kept from before, then those logged since, each log in its order. Keeps, for the next
        call, the rows that may still count at or after ``end_s``."""
        window, kept = Recorder(), Recorder()
        for columns, last_counts_at in _ROW_LOGS.values():
            log = {c: getattr(self._kept, c) + self._new_rows(c) for c in columns}
            still = np.flatnonzero(last_counts_at(log) >= end_s)
            for column, values in log.items():
                setattr(window, column, values)
                setattr(kept, column, [values[i] for i in still])
        for columns in _GAUGE_LOGS:
            log = {c: getattr(self._kept, c) + self._new_rows(c) for c in columns}
            still = _gauge_rows_still_counting(log[columns[0]], log[columns[1]], end_s)
            for column, values in log.items():
                setattr(window, column, values)
                setattr(kept, column, [values[i] for i in still])
        # A stride is logged when it ends, so one logged since the last call ended by now,
        # before the next call's end: it may count in the next call's intervals, not after.
        # Kept whatever its steps (the recorder may store them in any form), the few that
        # ended before a window count zero in it.
        new_strides = self._new_rows("_strides")
        for stride in (*self._previous_strides, *new_strides):
            window.decode_steps(*stride)
        self._previous_strides = new_strides
        self._kept = kept
        return window
