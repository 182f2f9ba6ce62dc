"""The one exception every reader raises for input it cannot load at all.

A bad row is quarantined (:mod:`telemetry.ingest.quarantine`); a bad *source* (an empty file,
an unreachable Prometheus, a renamed column) stops the load before anything is written. Either
way the user learns where, what and what to do, so the message is built from those three parts.
"""

from __future__ import annotations


class IngestError(ValueError):
    """A source cannot be loaded; nothing from it was written.

    Parameters
    ----------
    source : str
        The file, directory or Prometheus URL (without credentials) that failed.
    what : str
        What is wrong, with the line or series when there is one.
    fix : str
        What the user can do about it.
    """

    def __init__(self, source: str, what: str, fix: str):
        self.source = source
        self.what = what
        self.fix = fix
        super().__init__(f"{source}: {what}. {fix}")


def no_service(source: str) -> IngestError:
    """The refusal of a source that names no service anywhere: the one line says every way to
    name one (files and Prometheus follow the same rules, so they share this message)."""
    return IngestError(
        source,
        "no service named: no --service, no `service:` in the mapping, and no series carries "
        "a service, model_name or model label",
        "Pass --service NAME, or label the series service=NAME",
    )
