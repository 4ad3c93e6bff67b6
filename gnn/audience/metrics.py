"""Audience metrics against a set of true converters, at the campaign's budget size K.

With users ranked by score (ties by user id, as :func:`gnn.audience.base.score_frame` orders them),
``P`` the converters among the ``N`` scored users and ``top_K`` the first K:

- precision@K = |top_K ∩ P| / K, recall@K = |top_K ∩ P| / |P|;
- lift@K = precision@K / (|P| / N): how many times better than K users drawn at random;
- AUC = P(s(u⁺) > s(u⁻)) + ½ P(s(u⁺) = s(u⁻)) over converter/non-converter pairs (Mann-Whitney U
  with tied ranks averaged), so an all-equal score gets 0.5.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AudienceMetrics:
    k: int
    positives: int
    users: int
    hits: int
    precision: float
    recall: float
    lift: float
    auc: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC with ties counted half (NaN when one class is empty)."""
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def audience_metrics(ranked: pd.DataFrame, positives: Collection[str], k: int) -> AudienceMetrics:
    """Metrics of a ranked ``user_id, score`` frame (best first) against the converter set."""
    labels = ranked["user_id"].isin(set(positives)).to_numpy()
    n, n_pos = len(ranked), int(labels.sum())
    k = max(1, min(k, n))
    hits = int(labels[:k].sum())
    precision = hits / k
    base = n_pos / n if n else 0.0
    return AudienceMetrics(
        k=k,
        positives=n_pos,
        users=n,
        hits=hits,
        precision=precision,
        recall=hits / n_pos if n_pos else float("nan"),
        lift=precision / base if base else float("nan"),
        auc=auc(ranked["score"].to_numpy(float), labels),
    )
