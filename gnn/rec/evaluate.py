"""One evaluator for every recommender: full ranking over a target domain's catalogue.

Every model implements :class:`Recommender` (the single extension point): ``fit`` on a
:class:`~gnn.rec.data.RecData` and its target domains, then ``scores`` for a batch of users over
one domain's items. :func:`evaluate_domain` ranks each held-out (user, item) pair of the domain
against all of the domain's items except the user's fit items and other held-out items
(:mod:`gnn.rec.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from gnn.rec.metrics import metrics_from_ranks, ranks, user_average

if TYPE_CHECKING:
    import torch

    from gnn.rec.data import RecData


class Recommender(Protocol):
    """A model the evaluator can rank with."""

    name: str

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        """Train on ``data``'s fit interactions for the ``targets`` domains."""
        ...

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        """``[len(users), len(data.domain_items(domain))]`` scores (higher = better)."""
        ...


def evaluate_domain(
    model: Recommender, data: RecData, domain: str, batch_size: int = 1024
) -> dict[str, float]:
    """Full-ranking HR@10/20, NDCG@10/20, MRR, AUC of ``model`` on ``domain``'s test pairs."""
    import torch

    items = data.domain_items(domain)
    col = np.full(data.n_items, -1, dtype=np.int64)
    col[items] = np.arange(len(items))
    users, pos = data.test_in(domain)
    known = _known(data, items, col)
    held = _pairs_by_user(users, col[pos])
    all_ranks, all_neg = np.zeros(len(users)), np.zeros(len(users))
    uniq = np.unique(users)
    with torch.no_grad():
        for start in range(0, len(uniq), batch_size):
            batch = uniq[start : start + batch_size]
            s = model.scores(torch.from_numpy(batch), domain).numpy()
            row = {u: r for r, u in enumerate(batch)}
            for idx in np.flatnonzero(np.isin(users, batch)):
                r = row[users[idx]]
                mask = np.ones(len(items), dtype=bool)
                mask[known.get(int(users[idx]), [])] = False
                mask[held[int(users[idx])]] = False
                all_ranks[idx] = ranks(s[r, col[pos[idx]]][None], s[r][None], mask[None])[0]
                all_neg[idx] = mask.sum()
    return user_average(users, metrics_from_ranks(all_ranks, all_neg))


def _known(data: RecData, items: np.ndarray, col: np.ndarray) -> dict[int, list[int]]:
    """Per user, the columns of the domain items they have fit interactions with."""
    in_dom = np.isin(data.fit_item, items)
    return _pairs_by_user(data.fit_user[in_dom], col[data.fit_item[in_dom]])


def _pairs_by_user(users: np.ndarray, cols: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for u, c in zip(users.tolist(), cols.tolist(), strict=True):
        out.setdefault(u, []).append(c)
    return out
