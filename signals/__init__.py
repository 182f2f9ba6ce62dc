"""The signal study: how well each candidate autoscaling signal tracks offered load (paper §5.3.2).

``role_series`` turns per-instance samples into per-role series, ``resample`` coarsens them to
a controller's timescale, and ``score_signals`` scores every signal of every role against the
load that role serves. ``describe`` (:mod:`signals.statistics`) measures one candidate in full:
correlation, linearity and its knee, dynamic range, noise, lead/lag, SLO-breach prediction,
autocorrelation and stationarity, each headline figure with a block-bootstrap interval
(:mod:`signals.bootstrap`). ``study_table`` runs it for every candidate of every role (and GPU
type), ``classify`` classes and ranks them from those statistics alone, and ``recommend``
picks the primary signal with its per-instance target. Formulas and their reasons:
docs/signals.md.
This package imports only ``telemetry``.
"""

from signals.aggregate import MEAN_SIGNALS, SIGNALS, SUM_SIGNALS, resample, role_series
from signals.bootstrap import block_bootstrap_ci, block_length
from signals.classify import CLASSES, RECOMMENDATION_SCHEMA, classify, recommend
from signals.scoring import LOAD_COLUMNS, ROLE_LOAD, score_signals
from signals.statistics import Description, describe, generality
from signals.study import paired_series, run_study, study_table, target_from_data

__all__ = [
    "CLASSES",
    "Description",
    "LOAD_COLUMNS",
    "RECOMMENDATION_SCHEMA",
    "MEAN_SIGNALS",
    "ROLE_LOAD",
    "SIGNALS",
    "SUM_SIGNALS",
    "block_bootstrap_ci",
    "block_length",
    "classify",
    "describe",
    "generality",
    "recommend",
    "resample",
    "run_study",
    "paired_series",
    "role_series",
    "score_signals",
    "study_table",
    "target_from_data",
]
