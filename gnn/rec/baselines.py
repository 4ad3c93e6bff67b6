"""Baselines under PEACE's evaluator: most-popular, BPR matrix factorisation, EMCDR.

- :class:`MostPopular`: items ranked by their number of fit interactions in the target domain.
- :class:`BPRMF`: matrix factorisation trained with BPR (Rendle et al., UAI 2009),
  ``L = −Σ log σ(u·i⁺ − u·i⁻) + λ‖Θ‖²``, one model per target domain on its interactions only.
- :class:`EMCDR`: "Embedding and Mapping" cross-domain recommendation (Man et al., IJCAI 2017):
  (1) BPR-MF in the source domains (all of them together) and in the target domain; (2) an MLP
  ``f`` fitted on the users present in both, ``min Σ ‖f(u^s) − u^t‖²``; (3) a user with no target
  interactions is scored with ``f(u^s)``, others with their own ``u^t``.

LightGCN lives in :mod:`gnn.rec.lightgcn`. All take a :class:`BaselineConfig` and a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from gnn.rec.data import RecData


@dataclass(frozen=True)
class BaselineConfig:
    """Shared settings of the embedding baselines.

    Args:
        dim: embedding width; epochs: passes over the interactions; batch_size; lr; reg: ``λ``.
        layers: LightGCN propagation layers; map_epochs: EMCDR mapping epochs; seed: everything.
    """

    dim: int = 64
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 0.01
    reg: float = 1e-4
    layers: int = 2
    map_epochs: int = 200
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MostPopular:
    """Fit-interaction counts per item of the target domain (the same list for every user)."""

    name = "MostPop"

    def __init__(self) -> None:
        self.counts: np.ndarray = np.zeros(0)
        self.data: RecData | None = None

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        self.data = data
        self.counts = np.bincount(data.fit_item, minlength=data.n_items).astype(np.float32)

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        assert self.data is not None, "fit first"
        row = torch.from_numpy(self.counts[self.data.domain_items(domain)])
        return row.expand(len(users), -1)


class NegativeSampler:
    """Uniform negatives that are none of the user's fit items: a draw that hits one is redrawn (up
    to ``rounds`` times), as RecBole's sampler does. Drawing from every item instead lets a known
    positive be pushed down as a negative; on ML-100K that cost LightGCN 10% NDCG@10 against
    RecBole's (``python -m bench.peers``)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, rounds: int = 20) -> None:
        self.n_items, self.rounds = max(n_items, 1), rounds
        keys = torch.from_numpy(users).long() * self.n_items + torch.from_numpy(items).long()
        self.keys = torch.unique(keys)  # sorted

    def known(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) is a fit pair."""
        if not len(self.keys):
            return torch.zeros(len(users), dtype=torch.bool)
        k = users * self.n_items + items
        at = torch.searchsorted(self.keys, k).clamp_max(len(self.keys) - 1)
        hit: torch.Tensor = self.keys[at] == k
        return hit

    def __call__(self, users: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        neg = torch.randint(self.n_items, (len(users),), generator=gen)
        for _ in range(self.rounds):
            hit = self.known(users, neg)
            if not bool(hit.any()):
                break
            neg[hit] = torch.randint(self.n_items, (int(hit.sum()),), generator=gen)
        return neg


def train_bpr(
    n_users: int, n_items: int, users: np.ndarray, items: np.ndarray, config: BaselineConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """BPR-MF on local item indices; returns (user, item) embeddings (random if no interactions).

    Sparse rows and ``SparseAdam``: a step updates only the batch's rows (lazy Adam), so its cost
    does not grow with the number of users (dense Adam over 1M user rows took ≈0.5 s a step).
    """
    gen = torch.Generator().manual_seed(seed)
    u_emb = torch.nn.Embedding(n_users, config.dim, sparse=True)
    i_emb = torch.nn.Embedding(max(n_items, 1), config.dim, sparse=True)
    with torch.no_grad():
        u_emb.weight.copy_(torch.randn(n_users, config.dim, generator=gen) * 0.1)
        i_emb.weight.copy_(torch.randn(max(n_items, 1), config.dim, generator=gen) * 0.1)
    opt = torch.optim.SparseAdam([u_emb.weight, i_emb.weight], lr=config.lr)
    u_all, i_all = torch.from_numpy(users), torch.from_numpy(items)
    sampler = NegativeSampler(users, items, n_items)
    for _ in range(config.epochs if len(users) else 0):
        perm = torch.randperm(len(u_all), generator=gen)
        for start in range(0, len(perm), config.batch_size):
            b = perm[start : start + config.batch_size]
            u, pos = u_all[b], i_all[b]
            neg = sampler(u, gen)
            uu, ip, ineg = u_emb(u), i_emb(pos), i_emb(neg)
            diff = (uu * ip).sum(-1) - (uu * ineg).sum(-1)
            reg = (uu.pow(2).sum() + ip.pow(2).sum() + ineg.pow(2).sum()) / len(b)
            loss = -F.logsigmoid(diff).mean() + config.reg * reg
            opt.zero_grad()
            loss.backward()
            opt.step()  # type: ignore[no-untyped-call]
    return u_emb.weight.detach(), i_emb.weight.detach()


def local_items(data: RecData, domains: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit (user, local item column) of ``domains`` and the global rows of those columns."""
    items = np.concatenate([data.domain_items(d) for d in domains])
    col = np.full(data.n_items, -1, dtype=np.int64)
    col[items] = np.arange(len(items))
    users, glob = data.fit_in(list(domains))
    return users, col[glob], items


class BPRMF:
    """BPR matrix factorisation, one model per target domain (single-domain baseline)."""

    name = "BPR-MF"

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config
        self.emb: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        for k, t in enumerate(targets):
            users, cols, items = local_items(data, [t])
            self.emb[t] = train_bpr(data.n_users, len(items), users, cols, self.config, self.config.seed + k)

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        u, i = self.emb[domain]
        return u[users] @ i.T


class EMCDR:
    """EMCDR (Man et al., IJCAI 2017): MF per side, an MLP mapping source → target user vectors."""

    name = "EMCDR"

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config
        self.user: dict[str, torch.Tensor] = {}
        self.item: dict[str, torch.Tensor] = {}

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        cfg = self.config
        sources = [d for d in data.domains if d not in targets]
        su, scol, sitems = local_items(data, sources)
        u_src, _ = train_bpr(data.n_users, len(sitems), su, scol, cfg, cfg.seed)
        for k, t in enumerate(targets):
            tu, tcol, titems = local_items(data, [t])
            u_tgt, i_tgt = train_bpr(data.n_users, len(titems), tu, tcol, cfg, cfg.seed + 1 + k)
            both = np.intersect1d(np.unique(su), np.unique(tu))
            mapping = fit_mapping(u_src[both], u_tgt[both], cfg, cfg.seed + k)
            with torch.no_grad():
                mapped = mapping(u_src)
            warm = torch.zeros(data.n_users, dtype=torch.bool)
            warm[torch.from_numpy(np.unique(tu))] = True
            self.user[t] = torch.where(warm.unsqueeze(1), u_tgt, mapped)
            self.item[t] = i_tgt

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        return self.user[domain][users] @ self.item[domain].T


def fit_mapping(x: torch.Tensor, y: torch.Tensor, config: BaselineConfig, seed: int) -> torch.nn.Module:
    """EMCDR's MLP ``f`` (one tanh hidden layer) minimising ``‖f(x) − y‖²`` (untrained if no pairs)."""
    torch.manual_seed(seed)
    d = config.dim
    mlp = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.Tanh(), torch.nn.Linear(2 * d, d))
    opt = torch.optim.Adam(mlp.parameters(), lr=config.lr)
    for _ in range(config.map_epochs if len(x) else 0):
        loss = (mlp(x) - y).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mlp
