"""Any supported trace format, by name: the one place that knows which loader reads which."""

from __future__ import annotations

from pathlib import Path

from simulator.servegen import load_servegen_windows, servegen_requests
from simulator.traces import Trace, TraceError, default_trace, load_azure, load_mooncake

#: Trace formats a user can point the simulator at.
TRACE_FORMATS = ("azure", "mooncake", "servegen")


def load_trace(path: str | Path, trace_format: str) -> Trace:
    """Load a trace of any supported format into a :class:`~simulator.traces.Trace`.

    ``servegen`` files hold per-client rate windows, not requests: arrivals are regenerated
    from them (:func:`simulator.servegen.servegen_requests`) with request lengths drawn from
    the default Azure trace.

    Raises
    ------
    TraceError
        If the format is unknown or the file is malformed.
    """
    path = Path(path)
    if trace_format == "azure":
        return load_azure(path)
    if trace_format == "mooncake":
        return load_mooncake(path)
    if trace_format == "servegen":
        return servegen_requests(load_servegen_windows(path), default_trace().requests)
    raise TraceError(f"{path}: unknown trace format {trace_format!r}; use one of {TRACE_FORMATS}")
