"""The signal study: how well each candidate autoscaling signal tracks offered load (paper §5.3.2).

``role_series`` turns per-instance samples into per-role series; ``score_signals`` scores every
signal of every role against the offered load. Formulas and their reasons: docs/signals.md.
This package imports only ``telemetry``.
"""

from signals.aggregate import MEAN_SIGNALS, SIGNALS, SUM_SIGNALS, role_series
from signals.scoring import LOAD_COLUMNS, score_signals

__all__ = [
    "LOAD_COLUMNS",
    "MEAN_SIGNALS",
    "SIGNALS",
    "SUM_SIGNALS",
    "role_series",
    "score_signals",
]
