"""The cascade recommender whose computation GreenFlow allocates, and its outcomes on the world.

GreenFlow (Zhou et al., IJCAI 2023, arXiv 2312.16176) picks per request an *action chain*
``c = (recall instance, N; pre-ranking instance, M; ranking instance, K)``: recall scores every
item and keeps its top ``N``, pre-ranking keeps the top ``M`` of those, ranking shows its top
``K`` (``K ≤ M < N``). The instances are the project's models (:mod:`consumers.allocation.stages`)
trained on the visible past of a world; the requests are later rec pages (or a caller's stream).

Per chain: ``flops[c] = Σ_stages FLOPs(instance, items scored)`` counted on the real calls
(:func:`~consumers.allocation.stages.stage_flops`), and ``cpu_seconds[c]`` the measured
``time.process_time`` per request of serving the chain alone, one request at a time, on one torch
thread. Per request and chain: the true reward, eq. W2 of :mod:`consumers.allocation.world_reward`
(expected clicks of the ``K`` shown items in their order under the world's hidden click model).

Every instance runs once per request at the largest item count of the stage before it; a chain's
shown list comes from prefixes (recall's top-``N`` is the first ``N`` of its top-``N_max``), so
``R × C`` rewards cost ``R × instances`` model calls. :func:`serve` runs one chain alone (what is
timed); a test checks that both give the same list.

The world's training, requests and rewards are in :mod:`consumers.allocation.world_cascade`
(:func:`world_outcomes` is the entry); MovieLens-1M's replay in :mod:`consumers.allocation.movielens`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from consumers.allocation.outcomes import Chain, ChainOutcomes, Stage
from consumers.allocation.stages import (
    DotStage,
    IVFStage,
    PeaceStage,
    RankStage,
    parse_instance,
    stage_flops,
)
from graph.errors import InputError
from graph.store import GraphStore

Reward = Callable[[slice, np.ndarray], np.ndarray]
RECALL_KINDS = ("bpr", "lightgcn", "ivf", "peace")


@dataclass(frozen=True)
class CascadeConfig:
    """Stage instances, item counts and training of the world cascade.

    Args:
        recall: ``bpr<d>`` / ``lightgcn<d>`` / ``ivf<d>`` (an IVF over ``bpr<d>``) / ``peace<d>``
            (PEACE's interests) instances; prerank: ``bpr<d>`` / ``lightgcn<d>``; rank: those or
            ``srf<d>`` (the foundation model).
        recall_n, prerank_n, shown: the item counts N, M, K each stage may pass on.
        train, valid: shares of the impression log's time that train / validate the models; the
            requests are the rec pages after both (the test split of :func:`gnn.foundation.world.world_data`).
        dot_epochs, rank_epochs, peace_epochs: training passes; dot_batch: the dot models' batch size.
        max_requests: keep the first requests only (MovieLens: a seeded sample of them).
        timing_requests: requests timed per chain; batch: requests per batched model call.
        user_dims: 0, or ``k``: append ``k`` principal components of each recall instance's
            user vector to the request features (eq. U1 of :mod:`consumers.allocation.user_features`).
    """

    recall: tuple[str, ...] = ("bpr16", "lightgcn64")
    recall_n: tuple[int, ...] = (100, 300, 600)
    prerank: tuple[str, ...] = ("bpr8", "bpr32")
    prerank_n: tuple[int, ...] = (30, 100, 200)
    rank: tuple[str, ...] = ("bpr32", "lightgcn128")
    shown: tuple[int, ...] = (10,)
    train: float = 0.7
    valid: float = 0.1
    dot_epochs: int = 20
    rank_epochs: int = 6
    peace_epochs: int = 4
    dot_batch: int = 512
    max_requests: int | None = None
    timing_requests: int = 50
    batch: int = 256
    seed: int = 0
    user_dims: int = 0

    def __post_init__(self) -> None:
        for name in self.recall:
            parse_instance(name, RECALL_KINDS)
        for name in self.prerank:
            parse_instance(name, ("bpr", "lightgcn"))
        for name in self.rank:
            parse_instance(name, ("bpr", "lightgcn", "srf"))
        if not (
            self.recall and self.prerank and self.rank and self.recall_n and self.prerank_n and self.shown
        ):
            raise InputError("every stage needs at least one instance and one item count")
        if (
            min(
                *self.recall_n,
                *self.prerank_n,
                *self.shown,
                self.timing_requests,
                self.batch,
                self.dot_batch,
                self.peace_epochs,
            )
            < 1
        ):
            raise InputError("item counts, timing_requests, batch and peace_epochs must be >= 1")
        if self.user_dims < 0:
            raise InputError(f"user_dims is 0 (off) or features per recall model, got {self.user_dims}")
        if not (self.train > 0 and self.valid >= 0 and self.train + self.valid < 1):
            raise InputError("train and valid are time shares: 0 < train, 0 <= valid, train + valid < 1")
        if not self.chains():
            raise InputError(
                "no chain has K <= M < N; give prerank_n below some recall_n and shown <= prerank_n"
            )

    def chains(self) -> list[Chain]:
        """Every (recall, N, prerank, M, rank, K) with ``K ≤ M < N``, cheapest parts first."""
        out = []
        for a, n, b, m, c, k in itertools.product(
            self.recall,
            sorted(self.recall_n),
            self.prerank,
            sorted(self.prerank_n),
            self.rank,
            sorted(self.shown),
        ):
            if k <= m < n:
                out.append(Chain((Stage("recall", a, n), Stage("prerank", b, m), Stage("rank", c, k))))
        return out


@dataclass(frozen=True)
class Cascade:
    """The trained instances of every stage over one item universe (rows of the foundation data)."""

    recall: Mapping[str, DotStage | PeaceStage]
    prerank: Mapping[str, DotStage]
    rank: Mapping[str, DotStage | RankStage]
    user_ids: np.ndarray  # [U] ids of the users the models know
    item_ids: np.ndarray  # [I] ids of the item universe
    seen: tuple[np.ndarray, np.ndarray] | None = None  # CSR (indptr [U + 1], items) recall never shows

    def recall_scores(self, name: str, u: Tensor) -> Tensor:
        """[B, I] recall scores of instance ``name``, the user's ``seen`` items at −∞ (an IVF probes
        until it holds enough items the user has not seen)."""
        stage = self.recall[name]
        if self.seen is None:
            return stage.scores(u)
        indptr, items = self.seen
        lo, n = indptr[u.numpy()], np.diff(indptr)[u.numpy()]
        rows = np.repeat(np.arange(len(u)), n)
        at = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())  # every entry of each row
        hidden = (torch.from_numpy(rows), torch.from_numpy(items[at]))
        scores = stage.scores(u, exclude=hidden) if isinstance(stage, IVFStage) else stage.scores(u)
        scores[hidden] = -torch.inf
        return scores

    def users(self, ids: np.ndarray) -> np.ndarray:
        """[R] rows of user ids; a user the models never saw is an error."""
        rows = np.searchsorted(self.user_ids, ids)
        bad = (rows >= len(self.user_ids)) | (self.user_ids[np.minimum(rows, len(self.user_ids) - 1)] != ids)
        if bad.any():
            raise InputError(
                f"user {ids[bad][0]!r} has no rec page in the world; requests must come from its users"
            )
        return rows


def serve(cascade: Cascade, chain: Chain, u: Tensor) -> Tensor:
    """The ``K`` item rows ``chain`` shows to user rows ``u`` [B], in order: ``[B, K]``."""
    (rec, n), (pre, m), (rank, k) = ((s.instance, s.n_items) for s in chain.stages)
    top = torch.topk(cascade.recall_scores(rec, u), n).indices
    cand = top.gather(1, torch.topk(cascade.prerank[pre].scores(u, top), m).indices)
    return cand.gather(1, torch.topk(cascade.rank[rank].scores(u, cand), k).indices)


def shown_lists(cascade: Cascade, chains: list[Chain], u: Tensor) -> list[Tensor]:
    """[B, K_c] per chain, each instance run once at the stage's largest N (module doc)."""
    n_max = max(c.stages[0].n_items for c in chains)
    top = {a: torch.topk(cascade.recall_scores(a, u), n_max).indices for a in cascade.recall}
    pre = {(a, b): s.scores(u, top[a]) for a in top for b, s in cascade.prerank.items()}
    rank = {(a, c): s.scores(u, top[a]) for a in top for c, s in cascade.rank.items()}
    out = []
    for chain in chains:
        (a, n), (b, m), (c, k) = ((s.instance, s.n_items) for s in chain.stages)
        keep = torch.topk(pre[a, b][:, :n], m).indices  # positions in recall's list
        best = keep.gather(1, torch.topk(rank[a, c].gather(1, keep), k).indices)
        out.append(top[a].gather(1, best))
    return out


def chain_flops(cascade: Cascade, chain: Chain) -> int:
    """Eq. (module doc): recall scores every item, pre-ranking N, ranking M."""
    (rec, n), (pre, m), (rank, _) = ((s.instance, s.n_items) for s in chain.stages)
    return (
        stage_flops(cascade.recall[rec], None)
        + stage_flops(cascade.prerank[pre], n)
        + stage_flops(cascade.rank[rank], m)
    )


def chain_cpu_seconds(cascade: Cascade, chain: Chain, users: np.ndarray) -> float:
    """Mean ``time.process_time`` of :func:`serve` per request, one request at a time, one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = [torch.tensor([int(u)]) for u in users]
        with torch.no_grad():
            serve(cascade, chain, rows[0])  # warm-up
            t0 = time.process_time()
            for u in rows:
                serve(cascade, chain, u)
            return (time.process_time() - t0) / len(rows)
    finally:
        torch.set_num_threads(before)


def chain_rewards(
    cascade: Cascade, chains: list[Chain], users: np.ndarray, reward: Reward, batch: int
) -> np.ndarray:
    """[R, C] the reward of every chain for requests of user rows ``users`` [R], a batch of
    requests at a time; ``reward(rows, shown)`` scores the item rows ``shown`` [B, K] shown to
    requests ``rows`` (a slice)."""
    out = np.zeros((len(users), len(chains)))
    with torch.no_grad():
        for lo in range(0, len(users), batch):
            sl = slice(lo, lo + batch)
            for j, shown in enumerate(shown_lists(cascade, chains, torch.from_numpy(users[sl]))):
                out[sl, j] = reward(sl, shown.numpy())
    return out


def cost_table(outcomes: ChainOutcomes) -> pd.DataFrame:
    """One row per chain: FLOPs, CPU µs per request and mean reward, most expensive first."""
    return pd.DataFrame(
        {
            "chain": outcomes.chain_names,
            "mflops": outcomes.flops / 1e6,
            "cpu_us": outcomes.cpu_seconds * 1e6,
            "mean_reward": outcomes.rewards.mean(0),
        }
    ).sort_values("mflops", ascending=False, kind="stable")


def flops_cpu_correlation(outcomes: ChainOutcomes) -> float:
    """Spearman rank correlation of FLOPs and measured CPU seconds over the chains."""
    from scipy.stats import spearmanr

    return float(spearmanr(outcomes.flops, outcomes.cpu_seconds).statistic)


def world_outcomes(
    store: GraphStore,
    world: Path,
    config: CascadeConfig = CascadeConfig(),
    requests: pd.DataFrame | None = None,
) -> ChainOutcomes:
    """Train the cascade on the world's visible past and score later requests under every chain.

    requests: the caller's stream (columns ``user``, ``ts`` datetime64, optional ``request``), all
    after the training period; None takes the world's own rec pages of that period. Times of the
    result are seconds since the world's start.
    """
    from consumers.allocation.world_cascade import (
        cascade_outcomes,
        checked_requests,
        later_rec_pages,
        train_cascade,
    )

    cascade, cut = train_cascade(store, world, config)
    req = later_rec_pages(world, cut) if requests is None else checked_requests(requests, cut)
    return cascade_outcomes(cascade, store, world, req, config)
