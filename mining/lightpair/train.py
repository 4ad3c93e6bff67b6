"""LightPAIR's distillation, in three modules; this one re-exports their public names.

- :mod:`mining.lightpair.losses`: the training targets and the loss of each task;
- :mod:`mining.lightpair.training`: the config, the recipes (V2, V3) and the training loop;
- :mod:`mining.lightpair.calibration`: thresholds, caps and metrics on held-out heads.
"""

from __future__ import annotations

from mining.lightpair.calibration import (
    CAPS,
    GRID,
    Scored,
    best_threshold,
    calibrate_and_score,
    calibrate_from,
    caps_from,
    cross_fit,
    expansion_scores,
    joint_caps,
    judge_accuracy,
    judge_hits,
    relation_scores,
    tail_matrix,
)
from mining.lightpair.losses import (
    expansion_loss,
    judge_balance,
    judge_loss,
    listwise_loss,
    pool_expansions,
    relation_loss,
)
from mining.lightpair.training import (
    V2,
    V3,
    Batch,
    TrainConfig,
    fit,
    freeze_encoder,
    memoised,
    optimizer_for,
    part,
    split,
    task_loss,
)

__all__ = [
    "CAPS",
    "GRID",
    "V2",
    "V3",
    "Batch",
    "Scored",
    "TrainConfig",
    "best_threshold",
    "calibrate_and_score",
    "calibrate_from",
    "caps_from",
    "cross_fit",
    "expansion_loss",
    "expansion_scores",
    "fit",
    "freeze_encoder",
    "joint_caps",
    "judge_accuracy",
    "judge_balance",
    "judge_hits",
    "judge_loss",
    "listwise_loss",
    "memoised",
    "optimizer_for",
    "part",
    "pool_expansions",
    "relation_loss",
    "relation_scores",
    "split",
    "tail_matrix",
    "task_loss",
]
