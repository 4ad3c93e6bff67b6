"""The cascade on a world: its instances trained on the visible past, and the outcomes of every
chain on the later rec pages (:func:`cascade_outcomes`, the rewards of eq. W2).

The training data is :func:`gnn.foundation.world.world_data` over the store and the world's
visible impression log, split by time (``train`` / ``valid`` / ``test`` shares of the log's
timestamps): the foundation model (ranking) trains on its train rows and stops on its valid rows;
the dot-product instances (recall, pre-ranking), the IVF's BPR-MF and PEACE (recall) train on
the clicks of train ∪ valid. The requests are the rec pages of the test period, so no model ever
saw a request it is scored on. The item universe is every item of the impression log, the users
every user with a rec page.

Side features come from the store (category path, brand, domain, the KG's ``SERVES`` intents,
``ACTIVE_IN`` domains), so a mined KG reaches the ranking stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from consumers.allocation.cascade import (
    RECALL_KINDS,
    Cascade,
    CascadeConfig,
    Reward,
    chain_cpu_seconds,
    chain_flops,
    chain_rewards,
)
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.stages import (
    DotStage,
    PeaceStage,
    RankStage,
    parse_instance,
    train_dot,
    train_ivf,
    train_peace,
    train_rank,
)
from consumers.allocation.world_reward import ClickTruth, load_click_truth
from graph.errors import InputError
from graph.store import GraphStore
from loaders.world.layout import WorldDir

if TYPE_CHECKING:
    from gnn.foundation.data import FoundationData
    from gnn.foundation.features import Encoded


def train_cascade(store: GraphStore, world: Path, config: CascadeConfig) -> tuple[Cascade, pd.Timestamp]:
    """(the trained cascade, the end of its training period)."""
    from gnn.foundation.features import encode
    from gnn.foundation.world import world_data

    data = world_data(store, world, train=config.train, valid=config.valid)
    enc = encode(data, with_text=False)
    cut = pd.Timestamp(data.samples.loc[data.samples["split"] != "test", "ts"].max())
    users = np.sort(data.requests.loc[data.requests["kind"] == "user", "request"].to_numpy(str))
    items = np.asarray(enc.item_ids, dtype=str)
    s = data.samples
    fit = s[(s["label"] == 1) & (s["split"] != "test") & s["user"].isin(users)]
    u = np.searchsorted(users, fit["user"].to_numpy(str))
    i = pd.Index(items).get_indexer(fit["item"].to_numpy(str))

    def dot(name: str, seed: int) -> DotStage:
        return train_dot(name, len(users), len(items), u, i, config.dot_epochs, seed, config.dot_batch)

    seed = config.seed
    clicks = (u, i, fit["ts"].to_numpy("datetime64[ns]").astype(np.int64))

    def recall_stage(name: str, seed: int) -> DotStage | PeaceStage:
        kind, dim = parse_instance(name, RECALL_KINDS)
        if kind == "ivf":  # eq. S4 over a BPR-MF of the same width, probed for 2 · max N items
            return train_ivf(dot(f"bpr{dim}", seed), min(2 * max(config.recall_n), len(items)), seed=seed)
        if kind == "peace":
            return train_peace(name, store, users, items, clicks, config.peace_epochs, seed)
        return dot(name, seed)

    recall = {n: recall_stage(n, seed + k) for k, n in enumerate(config.recall)}
    prerank = {n: dot(n, seed + 100 + k) for k, n in enumerate(config.prerank)}
    rank: dict[str, DotStage | RankStage] = {}
    for k, n in enumerate(config.rank):
        srf = n.startswith("srf")
        rank[n] = (
            _rank_stage(n, data, enc, users, config.rank_epochs, seed + 200 + k)
            if srf
            else dot(n, seed + 200 + k)
        )
    return Cascade(recall, prerank, rank, users, items), cut


def _rank_stage(
    name: str, data: FoundationData, enc: Encoded, users: np.ndarray, epochs: int, seed: int
) -> RankStage:
    model = train_rank(name, enc, epochs, seed)
    req_index = {r: k for k, r in enumerate(enc.request_ids)}
    domain_of = dict(zip(data.items["item"], map(_domain, data.items["sparse"]), strict=True))
    item_dom = np.array(
        [enc.domains.index(domain_of[x]) if domain_of[x] in enc.domains else 0 for x in enc.item_ids]
    )
    scen = [_scenario(enc.scenarios, enc.domains[d]) for d in item_dom]
    return RankStage(
        name,
        model,
        torch.tensor([req_index[x] for x in users], dtype=torch.long),
        torch.arange(len(enc.item_ids)),
        torch.from_numpy(item_dom.astype(np.int64)),
        torch.tensor(scen, dtype=torch.long),
    )


def _domain(tokens: list[str]) -> str:
    return next((t.removeprefix("domain:") for t in tokens if t.startswith("domain:")), "")


def _scenario(scenarios: list[str], domain: str) -> int:
    for name in (f"{domain}/rec", f"{domain}/search"):
        if name in scenarios:
            return scenarios.index(name)
    return 0


def later_rec_pages(world: Path, cut: pd.Timestamp) -> pd.DataFrame:
    """The world's rec pages after ``cut`` (request, user, ts), in time order."""
    path = WorldDir(world).visible("events", "impressions.parquet")
    imp = pd.read_parquet(
        path, columns=["request", "user", "query", "ts", "clicked"], filters=[("clicked", "==", True)]
    )
    rec = imp[(imp["query"].fillna("") == "") & (imp["ts"] > cut)]
    out = rec[["request", "user", "ts"]].astype({"request": str, "user": str})
    return out.sort_values(["ts", "request"], kind="stable").reset_index(drop=True)


def world_reward(cascade: Cascade, truth: ClickTruth, users: np.ndarray, ts: np.ndarray) -> Reward:
    """Eq. W2 of :mod:`~consumers.allocation.world_reward` as a ``reward`` of :func:`chain_rewards`."""
    world_item = truth.items(cascade.item_ids)
    cache: dict[tuple[int, int], np.ndarray] = {}

    def reward(rows: slice, shown: np.ndarray) -> np.ndarray:
        key = (rows.start, rows.stop)
        if key not in cache:  # the live intents of the batch, once for all chains
            cache.clear()
            cache[key] = truth.relevant_leaves(cascade.user_ids[users[rows]], ts[rows])
        return truth.expected_clicks(cache[key], world_item[shown])

    return reward


def cascade_outcomes(
    cascade: Cascade, store: GraphStore, world: Path, requests: pd.DataFrame, config: CascadeConfig
) -> ChainOutcomes:
    """:class:`ChainOutcomes` of a trained cascade on ``requests`` (request, user, ts; time order)."""
    from consumers.allocation.arrival import arrival_features
    from consumers.allocation.user_features import with_user_features

    req = requests if config.max_requests is None else requests.iloc[: config.max_requests]
    if req.empty:
        raise InputError("no requests after the training period; lower train/valid or pass later requests")
    chains = config.chains()
    n_items = len(cascade.item_ids)
    if max(c.stages[0].n_items for c in chains) > n_items:
        raise InputError(f"recall_n may be at most the {n_items} items of the world's universe")
    users, ts = cascade.users(req["user"].to_numpy(str)), req["ts"].to_numpy("datetime64[us]")
    truth = load_click_truth(world)
    rng = np.random.default_rng(config.seed)
    timed = rng.choice(users, size=min(config.timing_requests, len(users)), replace=False)
    features, names = arrival_features(store, world, req["user"].to_numpy(str), ts)
    outcomes = ChainOutcomes(
        chains=tuple(chains),
        flops=np.array([chain_flops(cascade, c) for c in chains], float),
        cpu_seconds=np.array([chain_cpu_seconds(cascade, c, timed) for c in chains]),
        rewards=chain_rewards(cascade, chains, users, world_reward(cascade, truth, users, ts), config.batch),
        features=features,
        feature_names=names,
        times=(pd.to_datetime(ts) - truth.start).total_seconds().to_numpy(),
        request_ids=req["request"].to_numpy(object),
        source="world",
    )
    return with_user_features(outcomes, cascade, users, config.user_dims, config.seed)


def checked_requests(requests: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    missing = {"user", "ts"} - set(requests.columns)
    if missing:
        raise InputError(f"requests lack column(s) {', '.join(sorted(missing))}; give user and ts")
    req = requests.sort_values("ts", kind="stable").reset_index(drop=True)
    if (pd.to_datetime(req["ts"]) <= cut).any():
        raise InputError(
            f"every request must come after the training period (after {cut}); the models saw it"
        )
    if "request" not in req:
        req = req.assign(request=[f"req:{i}" for i in range(len(req))])
    return req[["request", "user", "ts"]]
