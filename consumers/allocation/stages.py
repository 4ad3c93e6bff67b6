"""The cascade's model instances: what each stage runs, trained on the world's visible past.

GreenFlow (Zhou et al., "GreenFlow: A Computation Allocation Framework for Building
Environmentally Sound Recommendation System", IJCAI 2023, arXiv 2312.16176) allocates computation
over the stages of a cascade; here every stage instance is one of the project's own models:

- recall: ``s(u, i) = e_u · e_i`` over the whole item universe, from BPR-MF
  (:func:`gnn.rec.baselines.train_bpr`, ``bpr<d>``) or LightGCN (:func:`gnn.rec.lightgcn.train_lightgcn`,
  ``lightgcn<d>``) embeddings of width ``d``: ``[1, d] @ [d, I]`` per request;                 (S1)
- pre-ranking: the same dot product over the recalled items only (``[N, d] @ [d, 1]``), from a
  smaller or larger BPR-MF / LightGCN;                                                            (S2)
- ranking: the S&R Multi-Domain Foundation model (Gong et al., CIKM 2023, arXiv 2309.08939;
  :class:`gnn.foundation.model.SRFoundation`, ``srf<d>``, widths scaled with ``d``) trained on the
  impression log's train split, its logit ``f(u, i, domain(i), domain(i)/rec)`` per candidate; (S3)
  or a wider dot-product model (eq. S2 with a larger ``d``). On the small and demo worlds the
  foundation model's validation AUC stays near 0.5 (too few pages per user), so its top-K is
  close to random; the default ranking instances therefore include a wide LightGCN.
- approximate recall (:class:`IVFStage`, :func:`train_ivf`): eq. S1 over the items of an inverted
  file of a trained BPR-MF / LightGCN item table (:func:`gnn.rec.ivf.build_ivf`: spherical k-means
  into ``C ≈ √I`` lists of at most ``2I / C`` items). Per request the lists are ranked by
  ``e_u · c`` and taken best first until they hold ``target`` items (≥ the largest recall ``N``);
  only those items are scored, every other item scores −∞:
  ``[1, d] @ [d, C]`` + ``[n, d] @ [d, 1]`` with ``n ≈ target`` instead of ``[1, d] @ [d, I]``.  (S4)
  Selectable as ``ivf<d>``: the IVF over a ``bpr<d>`` trained like the other instances, probed
  until ``2 · max(recall_n)`` items;
- multi-interest recall (:class:`PeaceStage`, :func:`train_peace`, ``peace<d>``): PEACE (Gao et
  al., "PEACE: Prototype lEarning Augmented transferable framework for Cross-domain
  rEcommendation", WSDM 2024, arXiv 2312.01916; :class:`gnn.rec.peace.Peace`) pre-trained on the
  same clicks over every domain (no target fine-tuning, so one network scores the whole universe),
  its ``K`` enhanced interests ``z'_k`` ``[U, K, d]`` and item vectors ``v_i`` ``[I, d]`` unit-normed,
  ``s(u, i) = max_k z'_k · v_i`` (its eq. E7): ``K × [1, d] @ [d, I]`` per request.             (S5)

Every instance maps (user rows ``[B]``, candidate item rows ``[B, n]`` or None = all items) to
scores ``[B, n]`` in torch, so :func:`stage_flops` counts its floating-point operations with
:class:`torch.utils.flop_counter.FlopCounterMode` on the real call (matrix products; lookups and
the top-n selection count zero).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from graph.errors import InputError

if TYPE_CHECKING:
    from gnn.foundation.features import Encoded
    from gnn.foundation.model import SRFoundation
    from graph.store import GraphStore

INSTANCE = re.compile(r"^(bpr|lightgcn|srf|ivf|peace)(\d+)$")


def parse_instance(name: str, allowed: tuple[str, ...]) -> tuple[str, int]:
    """``bpr16`` → (``bpr``, 16); a kind outside ``allowed`` or a width < 1 is an error."""
    m = INSTANCE.match(name)
    if not m or m.group(1) not in allowed or int(m.group(2)) < 1:
        raise InputError(
            f"unknown stage instance {name!r}; write one of {'/'.join(allowed)} + width, e.g. {allowed[0]}16"
        )
    return m.group(1), int(m.group(2))


@dataclass(frozen=True)
class DotStage:
    """Eq. S1/S2: user vectors ``[U, d]`` · item vectors ``[I, d]``."""

    name: str
    users: Tensor
    items: Tensor

    def scores(self, u: Tensor, cand: Tensor | None = None) -> Tensor:
        """[B, I] over every item (recall) or [B, n] over the candidates ``cand`` [B, n]."""
        q = self.users[u]
        if cand is None:
            return q @ self.items.T
        return torch.bmm(self.items[cand], q[:, :, None])[:, :, 0]


@dataclass(frozen=True)
class RankStage:
    """Eq. S3: the foundation model's logit per (user request, candidate)."""

    name: str
    model: SRFoundation
    req_row: Tensor  # [U] the user's request row in the model's inputs
    item_row: Tensor  # [I] the item's row in the model's inputs
    item_domain: Tensor  # [I] the item's domain index
    item_scenario: Tensor  # [I] the index of the scenario ``domain/rec`` (or its search one)

    def scores(self, u: Tensor, cand: Tensor | None = None) -> Tensor:
        if cand is None:
            cand = torch.arange(len(self.item_row)).expand(len(u), -1)
        flat = cand.reshape(-1)
        req = self.req_row[u].repeat_interleave(cand.shape[1])
        logits, _ = self.model(req, self.item_row[flat], self.item_domain[flat], self.item_scenario[flat])
        out: Tensor = logits.reshape(cand.shape)
        return out


@dataclass(frozen=True)
class IVFStage(DotStage):
    """Eq. S4: a :class:`DotStage` whose recall (``cand=None``) scores only the items of the lists
    probed for the user, nearest centroid first, until they hold ``target`` items the user may be
    shown (``exclude``: the (row, item) pairs recall never shows, e.g. items already rated, rows in
    ascending order; the caller masks them); candidates given (pre-ranking) are scored exactly, as
    eq. S2."""

    centroids: Tensor  # [C, d] normalised list centroids
    list_of: Tensor  # [I] the list of each position of ``order``
    order: Tensor  # [I] item rows list by list
    sizes: Tensor  # [C] items per list
    target: int  # items to gather per request
    item_list: Tensor  # [I] the list of each item row

    def scores(
        self, u: Tensor, cand: Tensor | None = None, exclude: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        if cand is not None:
            return super().scores(u, cand)
        q = self.users[u]  # [B, d]
        ranked = torch.argsort(q @ self.centroids.T, dim=1, descending=True)  # [B, C]
        out = torch.full((len(u), len(self.items)), -torch.inf, dtype=q.dtype)
        if exclude is not None:  # rows sorted: each user's excluded items are one slice
            bounds = torch.searchsorted(exclude[0], torch.arange(len(u) + 1, dtype=exclude[0].dtype))
        for b in range(len(u)):
            sizes, shown = self.sizes, None
            if exclude is not None:  # what each list holds that this user may be shown
                hidden = exclude[1][bounds[b] : bounds[b + 1]]
                sizes = sizes - torch.bincount(self.item_list[hidden], minlength=len(sizes))
                shown = torch.ones(len(self.items), dtype=torch.bool)
                shown[hidden] = False
            before = torch.cumsum(sizes[ranked[b]], 0) - sizes[ranked[b]]
            keep = torch.zeros(len(self.sizes), dtype=torch.bool)
            keep[ranked[b][before < self.target]] = True
            idx = self.order[keep[self.list_of]]  # [n] the items of the probed lists
            if shown is not None:
                idx = idx[shown[idx]]  # only what may be shown is scored (the FLOPs counted)
            out[b, idx] = (self.items[idx] @ q[b : b + 1].T)[:, 0]
        return out


def train_ivf(stage: DotStage, target: int, lists: int | None = None, seed: int = 0) -> IVFStage:
    """Eq. S4 over ``stage``'s item table: an IVF of ``lists`` lists (None: ``round(√I)``) probed
    until ``target`` items per request; named ``ivf-<stage name>``."""
    from gnn.rec.ivf import IVFConfig, build_ivf

    if not 1 <= target <= len(stage.items):
        raise InputError(f"target must be between 1 and the {len(stage.items)} items, got {target}")
    items = stage.items.numpy().astype(np.float64)
    unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    index = build_ivf(unit, IVFConfig(lists=lists, seed=seed))
    ptr = index["ivf_ptr"]
    sizes = np.diff(ptr)
    item_list = np.empty(len(index["ivf_order"]), dtype=np.int64)
    item_list[index["ivf_order"]] = np.repeat(np.arange(len(sizes)), sizes)
    return IVFStage(
        f"ivf-{stage.name}",
        stage.users,
        stage.items,
        centroids=torch.from_numpy(index["ivf_centroids"]).to(stage.items.dtype),
        list_of=torch.from_numpy(np.repeat(np.arange(len(sizes)), sizes)),
        order=torch.from_numpy(index["ivf_order"]),
        sizes=torch.from_numpy(sizes),
        target=target,
        item_list=torch.from_numpy(item_list),
    )


@dataclass(frozen=True)
class PeaceStage:
    """Eq. S5: the max over ``K`` unit interests ``[U, K, d]`` of their dot with unit items ``[I, d]``."""

    name: str
    users: Tensor  # [U, K, d]
    items: Tensor  # [I, d]

    def scores(self, u: Tensor, cand: Tensor | None = None) -> Tensor:
        z = self.users[u]  # [B, K, d]
        if cand is None:
            out = z[:, 0] @ self.items.T
            for k in range(1, z.shape[1]):
                out = torch.maximum(out, z[:, k] @ self.items.T)
            return out
        per: Tensor = torch.bmm(self.items[cand], z.transpose(1, 2))  # [B, n, K]
        return per.amax(dim=2)


Stage = DotStage | RankStage | PeaceStage


def stage_flops(stage: Stage, n_candidates: int | None) -> int:
    """FLOPs of one request through ``stage`` scoring ``n_candidates`` items (None: all of them)."""
    from torch.utils.flop_counter import FlopCounterMode

    u = torch.zeros(1, dtype=torch.long)
    cand = None if n_candidates is None else torch.zeros(1, n_candidates, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        stage.scores(u, cand)
    return int(counter.get_total_flops())


def train_dot(
    name: str,
    n_users: int,
    n_items: int,
    users: np.ndarray,
    items: np.ndarray,
    epochs: int,
    seed: int,
    batch_size: int = 512,
) -> DotStage:
    """A recall / pre-ranking instance ``bpr<d>`` or ``lightgcn<d>`` fitted on the (user, item) clicks."""
    from gnn.rec.baselines import BaselineConfig, train_bpr
    from gnn.rec.lightgcn import train_lightgcn

    kind, dim = parse_instance(name, ("bpr", "lightgcn"))
    cfg = BaselineConfig(dim=dim, epochs=epochs, batch_size=batch_size, seed=seed)
    if kind == "bpr":
        u, i = train_bpr(n_users, n_items, users.copy(), items.copy(), cfg, seed)
    else:
        u, i, _ = train_lightgcn(n_users, n_items, users.copy(), items.copy(), cfg, seed)
    return DotStage(name, u.detach().contiguous(), i.detach().contiguous())


def train_peace(
    name: str,
    store: GraphStore,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    clicks: tuple[np.ndarray, np.ndarray, np.ndarray],
    epochs: int,
    seed: int,
) -> PeaceStage:
    """A recall instance ``peace<d>`` (eq. S5): PEACE's graph (entities, the KG, no text features)
    read from ``store``, its interactions replaced by ``clicks`` (user rows, item rows, int64 times)
    over ``user_ids`` / ``item_ids``, pre-trained ``epochs`` passes on every domain."""
    from dataclasses import replace

    import torch.nn.functional as F

    from gnn.rec.data import RecDataConfig, load_rec_data
    from gnn.rec.peace import Peace, PeaceConfig

    _, dim = parse_instance(name, ("peace",))
    data = load_rec_data(store, RecDataConfig(features=False))
    u_row = pd.Index(data.user_ids).get_indexer(pd.Index(user_ids))
    i_row = pd.Index(data.item_ids).get_indexer(pd.Index(item_ids))
    if (u_row < 0).any() or (i_row < 0).any():
        raise InputError("the store lacks users or items of the world; ingest the world into the store first")
    u, i, ts = clicks
    data = replace(data, fit_user=u_row[u], fit_item=i_row[i], fit_ts=ts)
    model = Peace(PeaceConfig(dim=dim, pretrain_epochs=epochs, finetune_epochs=0, seed=seed))
    model.fit(data, [])
    domain = data.domains[0]  # every domain shares the one pre-trained network
    with torch.no_grad():
        z = model.nets[domain].enhance(model.user_interests(torch.from_numpy(u_row), domain))
        v = model.item_vectors(domain)[0][torch.from_numpy(i_row)]
    return PeaceStage(name, F.normalize(z, dim=-1).contiguous(), F.normalize(v, dim=-1).contiguous())


def train_rank(name: str, enc: Encoded, epochs: int, seed: int) -> SRFoundation:
    """A ranking instance ``srf<d>``: the foundation model with every width scaled from ``d``
    (shared ``2d``, experts ``2d``, towers ``d``), no text aspect, trained on ``enc``'s train rows."""
    from gnn.foundation.model import FoundationConfig, SRFoundation
    from gnn.foundation.train import TrainConfig, fit

    _, dim = parse_instance(name, ("srf",))
    torch.manual_seed(seed)
    cfg = FoundationConfig(dim=dim, shared_dim=2 * dim, expert_dim=2 * dim, tower_dim=dim, use_text=False)
    model = SRFoundation(enc, cfg)
    fit(
        model,
        enc,
        enc.rows("train"),
        enc.rows("valid"),
        TrainConfig(epochs=epochs, batch_size=512, seed=seed),
    )
    model.eval()
    return model
