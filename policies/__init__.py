"""Controllers and their replay: the coordinated decode-TPS policy (paper §5.3.3).

``CoordinatedPolicyConfig`` configures the controller, ``pool_targets`` is its sizing rule,
``decide`` one control step with hysteresis, ``replay_decisions`` an open-loop replay over
recorded telemetry, and ``target_from_telemetry`` a per-instance target read off that telemetry.
Formulas and what is reconstructed: docs/policy.md.
"""

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
from policies.replay import DECISIONS_SCHEMA, replay_decisions
from policies.target import target_from_telemetry

__all__ = [
    "ACTIONS",
    "DECISIONS_SCHEMA",
    "HOLD",
    "SCALE_IN",
    "SCALE_OUT",
    "CoordinatedPolicyConfig",
    "Decision",
    "PoolCounts",
    "decide",
    "deployed_pd_ratio",
    "deployed_requirements",
    "pool_targets",
    "replay_decisions",
    "target_from_telemetry",
]
