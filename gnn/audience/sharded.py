"""Audience scoring of every user in user ranges on a Dask cluster (``mokg audience score --cluster``).

A fitted targeter whose score is a function of each user's own row scores in ranges of users:
the campaign's part is computed once in the driver (it needs the store), each worker scores one
contiguous range of the user matrix, and the driver puts the ranges back in order. Two methods
score that way:

- ``gnn`` (:mod:`gnn.audience.gnn`): s(u, c) = log Σ_i w_i exp(z_u · z_i) over the campaign's
  intents i (weights w, normalised TARGETS confidences); user matrix Z_User [U, d];
- ``lookalike`` (:mod:`gnn.audience.lookalike`): s(u, c) = cos(ẑ_u, μ_c) with μ_c the seed
  centroid [d]; user matrix Ẑ_User [U, d] (rows normalised).

``rule`` and ``ppr`` score the graph as a whole (a Cypher walk; a personalised PageRank over every
node) and ``density`` estimates a kernel density over the seed users, so they are not sharded here.
A range is a pure function of its rows, so a retried range gives the same scores; the scores equal
the single process's up to float summation order (BLAS may block a product of fewer rows
differently: ``tests/test_cluster.py`` checks 1e-9).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gnn.audience.base import AudienceError, Targeter, score_frame

if TYPE_CHECKING:
    from distributed import Client

SHARDED_METHODS = ("gnn", "lookalike")


def gnn_rows(z: np.ndarray, intents: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log Σ_i w_i exp(z_u · z_i) [n] of user rows ``z`` [n, d], intents [k, d], weights [k]."""
    from gnn.audience.gnn import log_weighted_sum_exp

    return log_weighted_sum_exp(z @ intents.T, weights)


def cosine_rows(z: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """cos(z_u, centre) [n] of user rows ``z`` [n, d] (the centre is unit length)."""
    zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return np.asarray(zn @ centre)


@dataclass(frozen=True)
class UserRows:
    """What scores users by rows: ids [U], the user matrix [U, d], the row function and its
    campaign arguments (small arrays, sent to every worker)."""

    ids: list[str]
    matrix: np.ndarray
    function: Any
    arguments: dict[str, np.ndarray]


def check_method(name: str) -> None:
    """Refuse, before any fitting, a method whose score is not computed by user rows."""
    if name not in SHARDED_METHODS:
        raise AudienceError(
            f"--cluster scores {' and '.join(SHARDED_METHODS)} in user ranges; {name} scores the graph "
            "as a whole: run it without --cluster"
        )


def user_rows(targeter: Targeter, campaign: str) -> UserRows:
    """The row form of a fitted ``gnn`` or ``lookalike`` targeter's score for ``campaign``."""
    from gnn.audience.gnn import GNNTargeter
    from gnn.audience.lookalike import LookalikeTargeter, unit

    if isinstance(targeter, GNNTargeter):
        ids, z = targeter.embeddings("User")
        intents, weights = targeter.intent_vector(campaign)
        return UserRows(list(ids), z, gnn_rows, {"intents": intents, "weights": weights})
    if isinstance(targeter, LookalikeTargeter) and targeter.gnn is not None:
        ids, z = targeter.gnn.embeddings("User")
        return UserRows(list(ids), z, cosine_rows, {"centre": unit(targeter.centroid(campaign))})
    check_method(targeter.name)
    raise AudienceError(f"the {targeter.name} targeter is not fitted; call fit(store, config) first")


def score_ranges(rows: UserRows, dask: Client, ranges: int, retries: int = 1) -> np.ndarray:
    """Scores [U] of every user, one Dask task per contiguous range of ``rows.matrix``."""
    bounds = np.linspace(0, len(rows.ids), max(1, ranges) + 1).astype(int)
    arguments = {k: dask.scatter(v, broadcast=True) for k, v in rows.arguments.items()}  # type: ignore[no-untyped-call]
    futures = [
        dask.submit(rows.function, rows.matrix[a:b], retries=retries, pure=False, **arguments)
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    parts = dask.gather(futures)  # type: ignore[no-untyped-call]
    return np.concatenate(parts) if parts else np.zeros(0)


def score_sharded(
    targeter: Targeter, campaign: str, cluster: str | Client, ranges: int | None = None
) -> pd.DataFrame:
    """``targeter.score(campaign)`` (every user, best first) computed in user ranges on
    ``cluster`` (``local:N``, ``tcp://HOST:PORT`` or a connected client; :mod:`graph.cluster`)."""
    from graph.cluster import open_cluster, worker_count

    rows = user_rows(targeter, campaign)
    with open_cluster(cluster) as dask:
        scores = score_ranges(rows, dask, ranges or 4 * worker_count(dask))
    return score_frame(rows.ids, scores)
