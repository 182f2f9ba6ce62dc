"""Controllers and their replay: the coordinated decode-TPS policy (paper §5.3.3).

``CoordinatedPolicyConfig`` configures the controller, ``pool_targets`` is its sizing rule,
``decide`` one control step with hysteresis, ``replay_decisions`` an open-loop replay over
recorded telemetry, ``run_backtest`` the closed loop (decisions placed by the scheduler and run
by the simulator), ``summarise_run`` what a run cost and delivered, and
``target_from_telemetry`` a per-instance target read off that telemetry.
Formulas and what is reconstructed: docs/policy.md.
"""

from policies.backtest import BACKTEST_DECISIONS_SCHEMA, Backtest, run_backtest
from policies.config import CoordinatedPolicyConfig
from policies.coordinated import (
    ACTIONS,
    HOLD,
    SCALE_IN,
    SCALE_OUT,
    Decision,
    PoolCounts,
    decide,
    pool_targets,
)
from policies.deployment import deployed_pd_ratio, deployed_requirements
from policies.evaluation import RUN_SUMMARY_SCHEMA, summarise_run
from policies.replay import DECISIONS_SCHEMA, replay_decisions
from policies.target import target_from_telemetry

__all__ = [
    "ACTIONS",
    "BACKTEST_DECISIONS_SCHEMA",
    "DECISIONS_SCHEMA",
    "HOLD",
    "RUN_SUMMARY_SCHEMA",
    "SCALE_IN",
    "SCALE_OUT",
    "Backtest",
    "CoordinatedPolicyConfig",
    "Decision",
    "PoolCounts",
    "decide",
    "deployed_pd_ratio",
    "deployed_requirements",
    "pool_targets",
    "replay_decisions",
    "run_backtest",
    "summarise_run",
    "target_from_telemetry",
]
