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
    model: Recommender,
    data: RecData,
    domain: str,
    batch_size: int = 256,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Full-ranking HR@10/20, NDCG@10/20, MRR, AUC of ``model`` on ``domain``'s test pairs.

    ``max_users``: score only a seeded random sample of that many test users (every item is still
    ranked for each of them); None scores them all.
    """
    import torch

    items = data.domain_items(domain)
    col = np.full(data.n_items, -1, dtype=np.int64)
    col[items] = np.arange(len(items))
    users, pos = data.test_in(domain)
    uniq = np.unique(users)
    if max_users is not None and len(uniq) > max_users:
        uniq = np.sort(np.random.default_rng(seed).choice(uniq, max_users, replace=False))
        keep = np.isin(users, uniq)
        users, pos = users[keep], pos[keep]
    order = np.argsort(users, kind="stable")
    users, pos = users[order], col[pos[order]]
    in_dom = col[data.fit_item] >= 0
    known_u, known_c = data.fit_user[in_dom], col[data.fit_item[in_dom]]
    sel = np.isin(known_u, uniq)
    known_u, known_c = known_u[sel], known_c[sel]
    all_ranks, all_neg = np.zeros(len(users)), np.zeros(len(users))
    with torch.no_grad():
        for start in range(0, len(uniq), batch_size):
            batch = uniq[start : start + batch_size]
            s = model.scores(torch.from_numpy(batch), domain).numpy()
            mask = np.ones(s.shape, dtype=bool)
            for u_arr, c_arr in ((known_u, known_c), (users, pos)):  # known and held-out items
                hit = np.isin(u_arr, batch)
                mask[np.searchsorted(batch, u_arr[hit]), c_arr[hit]] = False
            lo = int(np.searchsorted(users, batch[0], side="left"))
            hi = int(np.searchsorted(users, batch[-1], side="right"))
            row = np.searchsorted(batch, users[lo:hi])
            all_ranks[lo:hi] = ranks(s[row, pos[lo:hi]], s[row], mask[row])
            all_neg[lo:hi] = mask[row].sum(axis=1)
    return user_average(users, metrics_from_ranks(all_ranks, all_neg))
