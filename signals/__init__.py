"""The signal study: how well each candidate autoscaling signal tracks offered load (paper §5.3.2).

``role_series`` turns per-instance samples into per-role series, ``resample`` coarsens them to
a controller's timescale, and ``score_signals`` scores every signal of every role against the
load that role serves. Formulas and their reasons: docs/signals.md.
This package imports only ``telemetry``.
"""

from signals.aggregate import MEAN_SIGNALS, SIGNALS, SUM_SIGNALS, resample, role_series
from signals.scoring import LOAD_COLUMNS, ROLE_LOAD, score_signals

__all__ = [
    "LOAD_COLUMNS",
    "MEAN_SIGNALS",
    "ROLE_LOAD",
    "SIGNALS",
    "SUM_SIGNALS",
    "resample",
    "role_series",
    "score_signals",
]
