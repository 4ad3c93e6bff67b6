"""Full-ranking metrics: every candidate item is scored, nothing is sampled.

For one held-out (user, item) pair with score ``s+`` and candidate scores ``s_j`` (the target
domain's items, minus the user's known items and other held-out items), the 0-based rank is

    r = #{j : s_j > s+} + ½ · #{j : s_j = s+}       (ties count half: random tie-breaking in expectation)

and HR@K = 1[r < K], NDCG@K = 1[r < K] / log2(r + 2) (one relevant item, so IDCG = 1),
MRR = 1 / (r + 1), AUC = 1 − r / #negatives. Metrics are averaged per user first, then over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KS = (10, 20)
METRICS = ("HR@10", "HR@20", "NDCG@10", "NDCG@20", "MRR", "AUC")


def ranks(pos_scores: np.ndarray, cand_scores: np.ndarray, cand_mask: np.ndarray) -> np.ndarray:
    """0-based ranks (ties half) of ``pos_scores[b]`` among ``cand_scores[b, cand_mask[b]]``."""
    pos = pos_scores[:, None]
    greater = ((cand_scores > pos) & cand_mask).sum(axis=1)
    equal = ((cand_scores == pos) & cand_mask).sum(axis=1)
    return greater + 0.5 * equal  # type: ignore[no-any-return]


def metrics_from_ranks(rank: np.ndarray, n_neg: np.ndarray, ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-pair HR@K, NDCG@K, MRR and AUC from 0-based ranks and negative counts."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = rank < k
        out[f"HR@{k}"] = hit.astype(np.float64)
        out[f"NDCG@{k}"] = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    out["MRR"] = 1.0 / (rank + 1.0)
    out["AUC"] = np.where(n_neg > 0, 1.0 - rank / np.maximum(n_neg, 1), 1.0)
    return out


def user_average(users: np.ndarray, per_pair: dict[str, np.ndarray]) -> dict[str, float]:
    """Average each metric per user, then over users (plus ``users`` and ``pairs`` counts)."""
    if len(users) == 0:
        return {name: float("nan") for name in per_pair} | {"users": 0, "pairs": 0}
    frame = pd.DataFrame(per_pair).assign(user=users)
    means = frame.groupby("user").mean().mean()
    return {name: float(means[name]) for name in per_pair} | {
        "users": int(frame["user"].nunique()),
        "pairs": len(users),
    }
