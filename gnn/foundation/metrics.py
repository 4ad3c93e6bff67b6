"""AUC and GAUC per scenario, from scikit-learn's ``roc_auc_score``.

GAUC (group AUC; Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018,
arXiv 1706.06978, eq. 1) is the impression-weighted mean of per-request AUCs, over the requests
that have both a click and a non-click (others have no AUC and are left out, as in the paper).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

METRIC_COLUMNS = ["scenario", "n", "pos_rate", "auc", "gauc"]


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def gauc(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUCs over groups with both classes; NaN if none."""
    frame = pd.DataFrame({"g": groups, "y": labels, "s": scores})
    total, weight = 0.0, 0
    for _, grp in frame.groupby("g", sort=False):
        y = grp["y"].to_numpy()
        if 0 < y.sum() < len(y):
            total += len(y) * float(roc_auc_score(y, grp["s"].to_numpy()))
            weight += len(y)
    return total / weight if weight else float("nan")


def scenario_metrics(
    scenarios: np.ndarray, groups: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """One row per scenario (``METRIC_COLUMNS``), sorted by scenario name.

    scenarios, groups: [N] str (the ``"domain/task"`` name and the request id of each sample);
    labels: [N] {0, 1}; scores: [N] float (logits or probabilities: AUC is rank-based).
    """
    rows = []
    for name in sorted(set(scenarios.tolist())):
        m = scenarios == name
        y, s = labels[m], scores[m]
        rows.append(
            {
                "scenario": name,
                "n": int(m.sum()),
                "pos_rate": float(y.mean()),
                "auc": auc(y, s),
                "gauc": gauc(groups[m], y, s),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
