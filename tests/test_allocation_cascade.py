"""The GreenFlow cascade on the small world: chains, measured costs, and the true reward of what
each chain shows (consumers/allocation/cascade.py, stages.py, world_reward.py, arrival.py)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from consumers.allocation.cascade import (
    Cascade,
    CascadeConfig,
    chain_flops,
    flops_cpu_correlation,
    serve,
    shown_lists,
    world_outcomes,
)
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.stages import parse_instance
from consumers.allocation.world_cascade import cascade_outcomes
from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# dot-product ranking and the foundation model side by side (the latter trained for one epoch)
CONFIG = CascadeConfig(
    recall=("bpr8", "bpr32"),
    recall_n=(40, 80, 160),
    prerank=("bpr4", "bpr16"),
    prerank_n=(20, 40),
    rank=("lightgcn32", "srf8"),
    dot_epochs=8,
    rank_epochs=1,
    max_requests=150,
    timing_requests=10,
)


@pytest.fixture(scope="module")
def store(world_store: tuple[Path, Path]) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=world_store[1])) as s:
        yield s


@pytest.fixture(scope="module")
def trained(world_store: tuple[Path, Path], store: GraphStore) -> tuple[Cascade, pd.Timestamp, pd.DataFrame]:
    from consumers.allocation.world_cascade import later_rec_pages, train_cascade

    torch.set_num_threads(1)
    cascade, cut = train_cascade(store, world_store[0], CONFIG)
    return cascade, cut, later_rec_pages(world_store[0], cut).iloc[: CONFIG.max_requests]


@pytest.fixture(scope="module")
def outcomes(
    world_store: tuple[Path, Path], store: GraphStore, trained: tuple[Cascade, pd.Timestamp, pd.DataFrame]
) -> ChainOutcomes:
    return cascade_outcomes(trained[0], store, world_store[0], trained[2], CONFIG)


def test_outcomes_cover_every_chain_and_later_request(
    outcomes: ChainOutcomes, trained: tuple[Cascade, pd.Timestamp, pd.DataFrame]
) -> None:
    chains, r = CONFIG.chains(), len(trained[2])
    assert len(chains) == 2 * 5 * 2 * 2  # recall × (N, M) pairs with M < N × prerank × rank
    assert outcomes.rewards.shape == (r, len(chains)) and outcomes.features.shape[0] == r
    assert outcomes.flops.shape == outcomes.cpu_seconds.shape == (len(chains),)
    assert np.all(outcomes.cpu_seconds > 0) and np.all(outcomes.rewards > 0)
    assert len(set(outcomes.request_ids)) == r and np.all(np.diff(outcomes.times) >= 0)
    assert (trained[2]["ts"] > trained[1]).all()  # no request from the training period


def _width(instance: str) -> tuple[str, int]:
    return parse_instance(instance, ("bpr", "lightgcn", "srf"))


def test_flops_grow_with_item_counts_and_instance_widths(outcomes: ChainOutcomes) -> None:
    """Every chain that is at least as large as another in every stage (same model kinds, widths
    and item counts ≥) costs strictly more FLOPs."""
    flops = dict(zip(outcomes.chain_names, outcomes.flops, strict=True))
    compared = 0
    for c in outcomes.chains:
        for d in outcomes.chains:
            pairs = list(zip(c.stages, d.stages, strict=True))
            same_kind = all(_width(s.instance)[0] == _width(t.instance)[0] for s, t in pairs)
            larger = all(
                _width(s.instance)[1] >= _width(t.instance)[1] and s.n_items >= t.n_items for s, t in pairs
            )
            if c != d and same_kind and larger:
                assert flops[c.name] > flops[d.name], (c.name, d.name)
                compared += 1
    assert compared > 50


def test_measured_cpu_time_follows_the_counted_flops(outcomes: ChainOutcomes) -> None:
    assert flops_cpu_correlation(outcomes) > 0


def test_the_dearest_dot_ranked_chain_earns_at_least_the_cheapest_chain(outcomes: ChainOutcomes) -> None:
    flops, mean = outcomes.flops, outcomes.rewards.mean(0)
    dot = np.array([c.stages[2].instance.startswith("lightgcn") for c in outcomes.chains])
    dearest = np.flatnonzero(dot)[np.argmax(flops[dot])]
    assert mean[dearest] >= mean[np.argmin(flops)]


def test_one_request_pass_equals_each_chain_served_alone(
    trained: tuple[Cascade, pd.Timestamp, pd.DataFrame],
) -> None:
    cascade, _, req = trained
    u = torch.from_numpy(cascade.users(req["user"].to_numpy(str)[:5]))
    with torch.no_grad():
        batched = shown_lists(cascade, CONFIG.chains(), u)
        for chain, shown in zip(CONFIG.chains(), batched, strict=True):
            for r in range(len(u)):
                assert torch.equal(serve(cascade, chain, u[r : r + 1])[0], shown[r]), chain.name


def test_reward_is_the_expected_clicks_of_the_shown_list(
    world_store: tuple[Path, Path],
    outcomes: ChainOutcomes,
    trained: tuple[Cascade, pd.Timestamp, pd.DataFrame],
) -> None:
    from consumers.allocation.world_reward import load_click_truth
    from loaders.world.impressions import B0, B_POP, B_POS, B_REL

    cascade, _, req = trained
    truth = load_click_truth(world_store[0])
    episodes = pd.read_parquet(world_store[0] / "hidden" / "user_intents.parquet")
    for r, c in ((0, len(outcomes.chains) - 1), (len(req) - 1, 0), (len(req) // 2, 7)):
        user, ts = str(req["user"].iloc[r]), req["ts"].iloc[r]
        with torch.no_grad():
            shown = serve(cascade, outcomes.chains[c], torch.from_numpy(cascade.users(np.array([user]))))[0]
        mine = episodes[(episodes["user"] == user) & (episodes["start"] <= ts) & (ts < episodes["end"])]
        needed = np.zeros(truth.model.needs.shape[1], bool)
        for intent in mine["intent"]:
            needed |= truth.model.needs[truth.intent_index[intent]]
        total = 0.0
        for k, item in enumerate(cascade.item_ids[shown.numpy()]):
            i = truth.item_index[item]
            z = (
                B0
                + B_REL * needed[truth.model.item_leaf[i]]
                + B_POP * truth.model.log_pop[i]
                - B_POS * np.log(1 + k)
            )
            total += 1 / (1 + np.exp(-z))
        assert outcomes.rewards[r, c] == pytest.approx(total, rel=1e-9)


def test_the_rebuilt_click_model_reproduces_the_worlds_hidden_p_click(world_store: tuple[Path, Path]) -> None:
    from consumers.allocation.world_reward import load_click_truth

    world = world_store[0]
    truth = load_click_truth(world)
    imp = pd.read_parquet(world / "visible" / "events" / "impressions.parquet")
    imp = imp.merge(pd.read_parquet(world / "hidden" / "click_model.parquet"), on=["request", "item"])
    pages = imp.groupby("request", sort=False).agg(user=("user", "first"), ts=("ts", "first"))
    leaves = truth.relevant_leaves(pages["user"].to_numpy(str), pages["ts"].to_numpy())
    row = pages.index.get_indexer(pd.Index(imp["request"]))
    items = truth.items(imp["item"].to_numpy(str))
    from loaders.world.impressions import p_click

    p = p_click(
        truth.model,
        leaves[row, truth.model.item_leaf[items]].astype(float),
        items,
        imp["position"].to_numpy(),
    )
    np.testing.assert_allclose(p, imp["p_click"].to_numpy(), atol=1e-6)


def test_features_are_visible_only(
    world_store: tuple[Path, Path], store: GraphStore, outcomes: ChainOutcomes, tmp_path: Path, trained: Any
) -> None:
    from consumers.allocation.arrival import arrival_features

    hidden_words = ("intent", "p_click", "relevan", "episode", "needs", "conversion")
    assert not [n for n in outcomes.feature_names if any(w in n.lower() for w in hidden_words)]
    blind = tmp_path / "world"  # the world without its hidden/ folder gives the same features
    shutil.copytree(world_store[0], blind, ignore=shutil.ignore_patterns("hidden"))
    req = trained[2]
    features, names = arrival_features(
        store, blind, req["user"].to_numpy(str), req["ts"].to_numpy("datetime64[us]")
    )
    assert names == outcomes.feature_names
    np.testing.assert_array_equal(features, outcomes.features)
    hour = outcomes.features[:, names.index("hour")]
    assert hour.min() >= 0 and hour.max() < 24 and np.ptp(hour) > 0


def test_requests_from_the_training_period_and_bad_configs_are_refused(
    world_store: tuple[Path, Path], store: GraphStore, trained: tuple[Cascade, pd.Timestamp, pd.DataFrame]
) -> None:
    early = pd.DataFrame({"user": [trained[2]["user"].iloc[0]], "ts": [trained[1] - pd.Timedelta(days=1)]})
    tiny = CascadeConfig(
        recall=("bpr4",), recall_n=(20,), prerank=("bpr4",), prerank_n=(10,), rank=("bpr4",), dot_epochs=1
    )
    with pytest.raises(InputError, match="after the training period"):
        world_outcomes(store, world_store[0], tiny, requests=early)
    with pytest.raises(InputError, match="unknown stage instance"):
        CascadeConfig(recall=("mlp8",))
    with pytest.raises(InputError, match="no chain"):
        CascadeConfig(recall_n=(10,), prerank_n=(30,))


def test_a_callers_stream_of_later_requests_is_scored(
    world_store: tuple[Path, Path], store: GraphStore, trained: tuple[Cascade, pd.Timestamp, pd.DataFrame]
) -> None:
    from consumers.allocation.world_cascade import checked_requests

    cascade, cut, pages = trained
    stream = pd.DataFrame(
        {"user": pages["user"].iloc[:3].to_numpy(), "ts": [cut + pd.Timedelta(hours=h) for h in (5, 1, 3)]}
    )
    req = checked_requests(stream, cut)
    out = cascade_outcomes(cascade, store, world_store[0], req, CONFIG)
    assert list(out.request_ids) == ["req:0", "req:1", "req:2"] and np.all(np.diff(out.times) > 0)
    assert out.rewards.shape == (3, len(CONFIG.chains())) and np.all(out.rewards > 0)


def test_chain_flops_count_every_stage(trained: tuple[Cascade, pd.Timestamp, pd.DataFrame]) -> None:
    cascade = trained[0]
    chain = CONFIG.chains()[0]  # recall bpr8 scores every item; bpr4 scores N; lightgcn32 scores M
    (_, n), (_, m) = ((s.instance, s.n_items) for s in chain.stages[:2])
    items = len(cascade.item_ids)
    assert chain_flops(cascade, chain) == 2 * 8 * items + 2 * 4 * n + 2 * 32 * m


def test_movielens_replay_rewards_hits_of_the_next_liked_ratings() -> None:
    from consumers.allocation.movielens import movielens_replay, replay_outcomes

    tiny = CascadeConfig(
        recall=("bpr8", "ivf8"),  # exact BPR-MF and the IVF over one (eq. S4)
        recall_n=(50, 100),
        prerank=("bpr4",),
        prerank_n=(20,),
        rank=("bpr8", "bpr16"),
        dot_epochs=1,
        dot_batch=8192,
        max_requests=300,
        timing_requests=5,
    )
    replay = movielens_replay(tiny)
    out = replay_outcomes(replay, tiny, horizon=10)
    assert out.source == "movielens" and out.rewards.shape == (300, 8) and out.features.shape == (300, 6)
    names = [c.name for c in out.chains]  # an IVF chain costs less than the same chain with exact recall
    ivf = [(c, names.index(n.replace("ivf8", "bpr8"))) for c, n in enumerate(names) if "ivf8" in n]
    assert len(ivf) == 4 and all(out.flops[a] < out.flops[b] for a, b in ivf)
    assert np.all(np.diff(out.times) >= 0) and out.rewards.max() <= 10 and out.rewards.sum() > 0
    assert out.times.min() > replay.cut  # every request after the training period
    r = replay.ratings
    for k in np.flatnonzero(out.rewards.sum(1) > 0)[:3]:  # by hand: hits of the next 10 liked ratings
        user, ts, item = str(out.request_ids[k]).split(":")[1:]
        row = int(np.flatnonzero(replay.users["user"].to_numpy(str) == user)[0])
        mine = r[r["user_row"] == row].reset_index(drop=True)  # sorted by time, then movie
        at = int(np.flatnonzero((mine["ts"] == int(ts)) & (mine["item_row"] == int(item)))[0])
        nxt = mine.iloc[at : at + 10]
        liked = set(nxt.loc[nxt["rating"] >= 4, "item_row"])
        seen = set(mine.loc[mine["ts"] <= replay.cut, "item_row"])
        for c, chain in enumerate(out.chains):
            with torch.no_grad():
                shown = serve(replay.cascade, chain, torch.tensor([row]))[0].numpy()
            assert not set(shown) & seen  # never a movie rated in the training period
            assert out.rewards[k, c] == len(set(shown) & liked)
    with pytest.raises(InputError, match="PEACE reads the store's graph"):
        movielens_replay(dataclasses.replace(tiny, recall=("peace8",)))


# the IVF over a BPR-MF and PEACE's interests as recall instances (issue 20), beside exact BPR-MF
RECALL_CONFIG = CascadeConfig(
    recall=("bpr16", "ivf16", "peace16"),
    recall_n=(20, 40),
    prerank=("bpr4",),
    prerank_n=(10,),
    rank=("bpr8",),
    dot_epochs=2,
    peace_epochs=1,
    max_requests=40,
    timing_requests=3,
)


@pytest.fixture(scope="module")
def recall_trained(world_store: tuple[Path, Path], store: GraphStore) -> tuple[Cascade, pd.DataFrame]:
    from consumers.allocation.world_cascade import later_rec_pages, train_cascade

    torch.set_num_threads(1)
    cascade, cut = train_cascade(store, world_store[0], RECALL_CONFIG)
    return cascade, later_rec_pages(world_store[0], cut).iloc[: RECALL_CONFIG.max_requests]


def test_ivf_and_peace_recall_build_outcomes_with_counted_flops(
    world_store: tuple[Path, Path], store: GraphStore, recall_trained: tuple[Cascade, pd.DataFrame]
) -> None:
    from consumers.allocation.stages import IVFStage, PeaceStage, stage_flops

    cascade, req = recall_trained
    assert isinstance(cascade.recall["ivf16"], IVFStage) and isinstance(cascade.recall["peace16"], PeaceStage)
    out = cascade_outcomes(cascade, store, world_store[0], req, RECALL_CONFIG)
    chains = RECALL_CONFIG.chains()
    assert out.rewards.shape == (len(req), len(chains)) and np.all(out.rewards > 0)
    items = len(cascade.item_ids)
    exact, ivf = stage_flops(cascade.recall["bpr16"], None), stage_flops(cascade.recall["ivf16"], None)
    peace = stage_flops(cascade.recall["peace16"], None)
    assert exact == 2 * 16 * items and 0 < ivf < exact
    assert peace == 2 * 16 * items * cascade.recall["peace16"].users.shape[1]
    flops = dict(zip(out.chain_names, out.flops, strict=True))
    for chain in chains:
        rec = chain.stages[0]
        twin = chain.name.replace(f"recall:{rec.instance}/", "recall:bpr16/")
        if rec.instance == "ivf16":
            assert 0 < flops[chain.name] < flops[twin]
        assert flops[chain.name] > 0


def test_ivf_and_peace_recall_served_alone_equal_the_batched_lists(
    recall_trained: tuple[Cascade, pd.DataFrame],
) -> None:
    cascade, req = recall_trained
    u = torch.from_numpy(cascade.users(req["user"].to_numpy(str)[:5]))
    chains = [c for c in RECALL_CONFIG.chains() if c.stages[0].instance != "bpr16"]
    with torch.no_grad():
        batched = shown_lists(cascade, RECALL_CONFIG.chains(), u)
        by_name = dict(zip([c.name for c in RECALL_CONFIG.chains()], batched, strict=True))
        for chain in chains:
            for r in range(len(u)):
                assert torch.equal(serve(cascade, chain, u[r : r + 1])[0], by_name[chain.name][r]), chain.name


def test_peace_recall_scores_are_the_max_over_its_interests(
    recall_trained: tuple[Cascade, pd.DataFrame],
) -> None:
    stage = recall_trained[0].recall["peace16"]
    u = torch.arange(3)
    with torch.no_grad():
        full = stage.scores(u)
        per = torch.stack([stage.users[u][:, k] @ stage.items.T for k in range(stage.users.shape[1])])
        cand = torch.topk(full, 7).indices
        np.testing.assert_allclose(full.numpy(), per.amax(0).numpy(), rtol=1e-6)
        np.testing.assert_allclose(stage.scores(u, cand).numpy(), full.gather(1, cand).numpy(), rtol=1e-5)
    assert stage.users.shape[1] > 1  # several interests per user
    with pytest.raises(InputError, match="unknown stage instance"):
        CascadeConfig(prerank=("peace8",))
