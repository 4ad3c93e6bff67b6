"""Request features from the cascade's own recall models: each user's vector, reduced by PCA.

GreenFlow (Zhou et al., "GreenFlow: A Computation Allocation Framework for Building
Environmentally Sound Recommendation System", IJCAI 2023, arXiv 2312.16176) estimates each
chain's reward from what is known when a request arrives (its input ``x``: user profile,
context). The arrival features of :mod:`consumers.allocation.arrival` say little about *who* the
user is; the recall instances of the cascade (:mod:`consumers.allocation.stages`, BPR-MF /
LightGCN / IVF over BPR-MF / PEACE) already hold a learned vector per user. Appending a short
projection of it costs a table lookup per request (no item is scored, so it does not eat the
budget it allocates):

    x'_r = [x_r, P_a e_{u(r)}^a for every recall instance a]                                 (U1)

where ``e^a`` ``[U, d_a]`` is instance ``a``'s user table (PEACE: its ``K`` interests averaged,
``[U, K, d] → [U, d]``) and ``P_a`` ``[k, d_a]`` the top ``k`` principal axes of that table
(:class:`sklearn.decomposition.PCA`, fitted on every user the cascade knows, seeded), so the
columns are ``k · #recall`` numbers per request named ``user:<instance>:<j>``.

Selected by ``CascadeConfig.user_dims = k`` (0, the default: off); the world and MovieLens builds
call :func:`with_user_features` on their outcomes. Measured in ``docs/allocation.md`` ("What the
tables say"): on the 6,000-user world the estimator's skill rises severalfold with these columns,
but GreenFlow keeps only 0.5–2 points more of the optimum, and only with boosted trees.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from graph.errors import InputError

if TYPE_CHECKING:
    from consumers.allocation.cascade import Cascade
    from consumers.allocation.outcomes import ChainOutcomes


def user_table(users: np.ndarray) -> np.ndarray:
    """[U, d] from a recall instance's user vectors ([U, d], or PEACE's interests [U, K, d])."""
    table = np.asarray(users, dtype=float)
    return table.mean(axis=1) if table.ndim == 3 else table


def recall_user_features(
    cascade: Cascade, users: np.ndarray, dims: int, seed: int = 0
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Eq. U1's appended columns for user rows ``users`` [R]: ([R, k · #recall], their names)."""
    from sklearn.decomposition import PCA

    if dims < 1:
        raise InputError(f"user_dims must be >= 1 to add user features, got {dims}")
    blocks, names = [], []
    for name, stage in cascade.recall.items():
        table = user_table(stage.users.detach().numpy())
        k = min(dims, *table.shape)
        axes = PCA(n_components=k, random_state=seed).fit(table)
        blocks.append(axes.transform(table[users]))
        names += [f"user:{name}:{j}" for j in range(k)]
    return np.column_stack(blocks), tuple(names)


def with_user_features(
    outcomes: ChainOutcomes, cascade: Cascade, users: np.ndarray, dims: int, seed: int = 0
) -> ChainOutcomes:
    """``outcomes`` with eq. U1's columns appended (unchanged when ``dims`` is 0)."""
    if dims == 0:
        return outcomes
    extra, names = recall_user_features(cascade, users, dims, seed)
    return dataclasses.replace(
        outcomes,
        features=np.column_stack([outcomes.features, extra]),
        feature_names=outcomes.feature_names + names,
    )
