"""Request features from the cascade's recall user vectors (consumers/allocation/user_features.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from consumers.allocation.build import PRESETS, cache_key
from consumers.allocation.cascade import Cascade, CascadeConfig
from consumers.allocation.stages import DotStage, PeaceStage
from consumers.allocation.synthetic import synthetic_outcomes
from consumers.allocation.user_features import recall_user_features, with_user_features
from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cascade(n_users: int = 30, n_items: int = 12) -> Cascade:
    gen = torch.Generator().manual_seed(0)
    bpr = DotStage("bpr6", torch.randn(n_users, 6, generator=gen), torch.randn(n_items, 6, generator=gen))
    interests = torch.randn(n_users, 3, 4, generator=gen)
    peace = PeaceStage("peace4", interests, torch.randn(n_items, 4, generator=gen))
    ids = np.array([f"u{i:03d}" for i in range(n_users)])
    return Cascade({"bpr6": bpr, "peace4": peace}, {}, {}, ids, np.arange(n_items).astype(str))


def test_each_recall_instance_gives_its_top_principal_components_per_request() -> None:
    cascade, users = _cascade(), np.array([3, 3, 7, 0])
    x, names = recall_user_features(cascade, users, dims=5)
    # bpr6 keeps 5 components, PEACE's averaged [U, 4] table only 4
    assert names == tuple(f"user:bpr6:{j}" for j in range(5)) + tuple(f"user:peace4:{j}" for j in range(4))
    assert x.shape == (4, 9) and np.array_equal(x[0], x[1])  # one user, one row
    full, _ = recall_user_features(cascade, np.arange(30), dims=5)
    var = full[:, :5].var(0)
    assert np.all(np.diff(var) <= 1e-12) and np.allclose(full.mean(0), 0, atol=1e-9)  # PCA: centred, ordered
    again, _ = recall_user_features(cascade, users, dims=5)
    assert np.array_equal(x, again)
    with pytest.raises(InputError, match="user_dims"):
        recall_user_features(cascade, users, dims=0)


def test_outcomes_gain_the_columns_and_dims_zero_leaves_them_alone() -> None:
    out = synthetic_outcomes(30, 0)
    cascade = _cascade(n_users=30)
    assert with_user_features(out, cascade, np.arange(30), 0) is out
    more = with_user_features(out, cascade, np.arange(30), 2)
    assert more.features.shape == (30, out.features.shape[1] + 4)
    assert more.feature_names[: len(out.feature_names)] == out.feature_names
    assert np.array_equal(more.features[:, : out.features.shape[1]], out.features)
    assert np.array_equal(more.rewards, out.rewards)


def test_the_config_validates_user_dims_and_keys_its_cache_apart() -> None:
    with pytest.raises(InputError, match="user_dims"):
        CascadeConfig(user_dims=-1)
    full, user = PRESETS["full"], PRESETS["full-user"]
    assert user.user_dims == 8 and dataclasses.replace(user, user_dims=0) == full
    assert cache_key("movielens", full, None, None) != cache_key("movielens", user, None, None)


@pytest.fixture(scope="module")
def store(world_store: tuple[Path, Path]) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=world_store[1])) as s:
        yield s


def test_the_world_cascade_appends_its_recall_user_vectors(
    world_store: tuple[Path, Path], store: GraphStore
) -> None:
    from consumers.allocation.world_cascade import cascade_outcomes, later_rec_pages, train_cascade

    config = dataclasses.replace(PRESETS["tiny"], max_requests=40, user_dims=3)
    cascade, cut = train_cascade(store, world_store[0], config)
    req = later_rec_pages(world_store[0], cut).iloc[:40]
    out = cascade_outcomes(cascade, store, world_store[0], req, config)
    extra = [n for n in out.feature_names if n.startswith("user:")]
    assert extra == [f"user:{a}:{j}" for a in config.recall for j in range(3)]
    x = out.features[:, [out.feature_names.index(n) for n in extra]]
    want, _ = recall_user_features(cascade, cascade.users(req["user"].to_numpy(str)), 3)
    assert np.allclose(x, want) and np.isfinite(x).all()


def test_the_movielens_replay_appends_them_too() -> None:
    from consumers.allocation.movielens import movielens_replay, replay_outcomes

    tiny = CascadeConfig(
        recall=("bpr8",),
        recall_n=(50, 100),
        prerank=("bpr4",),
        prerank_n=(20,),
        rank=("bpr8",),
        dot_epochs=1,
        dot_batch=8192,
        max_requests=100,
        timing_requests=3,
        user_dims=2,
    )
    replay = movielens_replay(tiny)
    out = replay_outcomes(replay, tiny)
    assert out.features.shape == (100, 6 + 2) and out.feature_names[-2:] == ("user:bpr8:0", "user:bpr8:1")
    users = replay.ratings["user_row"].to_numpy()[replay.requests]
    assert np.allclose(out.features[:, -2:], recall_user_features(replay.cascade, users, 2)[0])
