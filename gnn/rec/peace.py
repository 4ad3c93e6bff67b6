"""PEACE: Prototype lEarning Augmented transferable framework for Cross-domain rEcommendation
(Gao et al., WSDM 2024, arXiv 2312.01916).

PEACE pre-trains user and item representations over an entity graph that links users, items and
entities of several *source* domains, then transfers them to *target* domains, including ones with
(almost) no interactions. The paper's full text and code were not available here; this is the
reading in ``PAPERS.md`` §2, and every choice it had to make is stated below. Equation numbers are
this package's:

- (E1) entity encoder, relation-aware over the MoKG (:class:`gnn.rec.encoder.EntityEncoder`);
- (E2) items pooled from their entities (category path, brand) and text; no item ids while
  pre-training, so domains without shared items are bridged (:func:`gnn.rec.encoder.pool_items`);
- (E3) ``K`` interests per user from their history (:class:`gnn.rec.encoder.MultiInterest`). The
  history is the set of items the user interacted with, each pooled from its entities, so the
  "derived user–entity edges" of the reading are what the attention weighs;
- (E4) contrastive prototype learning: a bank of ``C`` prototypes refreshed by k-means every
  ``refresh_every`` epochs, InfoNCE pulling entities and items to their prototype
  (:mod:`gnn.rec.prototypes`);
- (E5–E6) prototype-enhanced attention: each interest attends over the prototypes and adds the
  read-out (:mod:`gnn.rec.attention`);
- (E7) ``s(u, i) = max_k cos(z'_k, v_i)``, the multi-interest score;
- (E8) ``L = L_rec + λ · L_proto`` with ``L_rec`` a sampled softmax at temperature ``τ_rec`` over
  the batch's positives plus ``negatives`` uniform items of the training domains (accidental hits
  masked). As in ComiRec's training, the user side of each row is the one interest that attains
  E7's max for the positive (hard routing), so the softmax costs one interest, not ``K``.

Transfer: pre-train on the source domains' interactions (histories limited to source items), then
for each target domain copy the model, add zero-initialised item and user id embeddings (to
``v_i`` and to every ``z_k``) and fine-tune on the target's interactions, the history now being
every domain. A target without interactions (the cold-start domain) is served zero-shot. Serving
is lightweight (:mod:`gnn.rec.serve`): interests and item vectors are precomputed; only E5–E7 run
online.

Ablations (:class:`PeaceConfig`): ``use_prototypes=False`` drops E4–E6; ``use_proto_attention=False``
keeps E4 but drops E5–E6; ``use_entity_graph=False`` drops E1–E2's entities (items are text + an id
embedding from the start, and E4 clusters items only); ``single_interest=True`` sets ``K = 1``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnn.rec.attention import PrototypeAttention
from gnn.rec.encoder import EntityEncoder, MultiInterest, pool_items
from gnn.rec.prototypes import kmeans, prototype_loss

if TYPE_CHECKING:
    from gnn.rec.data import RecData


@dataclass(frozen=True)
class PeaceConfig:
    """Sizes, temperatures, schedule and ablation switches of PEACE (defaults fit the demo world).

    Args:
        dim: ``d``; interests: ``K``; layers: entity-encoder layers ``L``; prototypes: ``C``.
        tau_rec, tau_proto: temperatures of E8's softmax and of E4.
        lambda_proto: ``λ`` of E8; refresh_every: epochs between k-means refreshes of the bank.
        pretrain_epochs, finetune_epochs, batch_size, negatives, lr, finetune_lr, history_len: training.
        use_prototypes, use_proto_attention, use_entity_graph, single_interest: ablation switches.
        seed: seeds parameters, batches, negatives and k-means.
    """

    dim: int = 64
    interests: int = 4
    layers: int = 2
    prototypes: int = 32
    tau_rec: float = 0.1
    tau_proto: float = 0.2
    lambda_proto: float = 0.1
    refresh_every: int = 1
    kmeans_iters: int = 10
    pretrain_epochs: int = 6
    finetune_epochs: int = 6
    batch_size: int = 1024
    negatives: int = 256
    lr: float = 3e-3
    finetune_lr: float = 1e-3
    history_len: int = 20
    use_prototypes: bool = True
    use_proto_attention: bool = True
    use_entity_graph: bool = True
    single_interest: bool = False
    seed: int = 0

    @property
    def n_interests(self) -> int:
        return 1 if self.single_interest else self.interests

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


class PeaceNet(nn.Module):
    """The PEACE network over one :class:`~gnn.rec.data.RecData` (E1–E7)."""

    def __init__(self, config: PeaceConfig, data: RecData) -> None:
        super().__init__()
        d = config.dim
        self.config = config
        self.n_items = data.n_items
        self.item_x = torch.from_numpy(data.item_x)
        self.entity_x = torch.from_numpy(data.entity_x)
        self.kg_edges = torch.from_numpy(data.kg_edges)
        self.item_entity = torch.from_numpy(data.item_entity)
        self.entity: EntityEncoder | None = None
        if config.use_entity_graph:
            n_rel = len(data.relations)
            self.entity = EntityEncoder(data.n_entities, data.entity_x.shape[1], d, n_rel, config.layers)
        self.item_text = nn.Linear(data.item_x.shape[1], d, bias=False)
        self.item_id = nn.Embedding(data.n_items, d)
        self.user_id = nn.Embedding(data.n_users, d)
        nn.init.zeros_(self.item_id.weight)
        nn.init.zeros_(self.user_id.weight)
        self.use_ids = not config.use_entity_graph  # E2 without entities needs an id from the start
        self.interest = MultiInterest(d, config.n_interests)
        self.prototypes: nn.Parameter | None = None
        self.attention: PrototypeAttention | None = None
        if config.use_prototypes:
            self.prototypes = nn.Parameter(torch.randn(config.prototypes, d) * 0.1)
            if config.use_proto_attention:
                self.attention = PrototypeAttention(d)

    def entities(self) -> torch.Tensor | None:
        """E1 (None without the entity graph)."""
        return None if self.entity is None else self.entity(self.entity_x, self.kg_edges)

    def items(self, entity_h: torch.Tensor | None) -> torch.Tensor:
        """E2 for every item (plus the id embedding once ids are on)."""
        v = self.item_text(self.item_x)
        if entity_h is not None:
            v = v + pool_items(entity_h, self.item_entity, self.n_items)
        out: torch.Tensor = v + self.item_id.weight if self.use_ids else v
        return out

    def interests(
        self, users: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """E3 (raw interests ``[B, K, d]``); ``hist`` indexes ``v`` with ``n_items`` as padding."""
        vpad = torch.cat([v, v.new_zeros(1, v.shape[1])])
        z = self.interest(vpad, hist, mask)
        out: torch.Tensor = z + self.user_id(users).unsqueeze(1) if self.use_ids else z
        return out

    def enhance(self, z: torch.Tensor) -> torch.Tensor:
        """E5–E6 (identity when the attention is switched off)."""
        if self.attention is None or self.prototypes is None:
            return z
        return self.attention(z, self.prototypes)  # type: ignore[no-any-return]


def score(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """E7: ``[B, N]`` = max over interests of the cosine of ``z`` ``[B, K, d]`` and ``v`` ``[N, d]``."""
    return torch.einsum("bkd,nd->bkn", F.normalize(z, dim=-1), F.normalize(v, dim=-1)).max(dim=1).values


def build_history(data: RecData, domains: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each user's last ``length`` fit items in ``domains`` by time: ``[n_users, L]`` indices
    (``n_items`` pads) and a mask."""
    keep = np.isin(data.item_domain[data.fit_item], [data.domain_index(d) for d in domains])
    users, items, ts = data.fit_user[keep], data.fit_item[keep], data.fit_ts[keep]
    order = np.lexsort((items, -ts, users))  # per user, newest first
    users, items = users[order], items[order]
    pos = np.arange(len(users)) - np.searchsorted(users, users)
    take = pos < length
    hist = np.full((data.n_users, length), data.n_items, dtype=np.int64)
    hist[users[take], pos[take]] = items[take]
    idx = torch.from_numpy(hist)
    return idx, idx < data.n_items


class Peace:
    """PEACE as a :class:`~gnn.rec.evaluate.Recommender`: pre-train on the sources, fine-tune per target."""

    def __init__(self, config: PeaceConfig, name: str = "PEACE") -> None:
        self.config, self.name = config, name
        self.nets: dict[str, PeaceNet] = {}
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.losses: dict[str, list[float]] = {}
        self.data: RecData | None = None

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.data, self.cache = data, {}
        sources = [d for d in data.domains if d not in targets]
        base = PeaceNet(cfg, data)
        self.losses["pretrain"] = train(base, data, sources, sources, cfg.pretrain_epochs, cfg.lr, cfg.seed)
        self.nets = {d: base for d in sources}
        for t in targets:
            net = copy.deepcopy(base)
            net.use_ids = True
            if len(data.fit_in([t])[0]):
                ep, lr = cfg.finetune_epochs, cfg.finetune_lr
                self.losses[t] = train(net, data, [t], data.domains, ep, lr, cfg.seed + 1)
            self.nets[t] = net

    def embed(self, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw interests ``[n_users, K, d]`` (full history) and ``domain``'s item vectors."""
        assert self.data is not None, "fit first"
        net, data = self.nets[domain], self.data
        hist, mask = build_history(data, data.domains, self.config.history_len)
        with torch.no_grad():
            v = net.items(net.entities())
            z = net.interests(torch.arange(data.n_users), hist, mask, v)
        return z, v[torch.from_numpy(data.domain_items(domain))]

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        if domain not in self.cache:
            z, v = self.embed(domain)
            with torch.no_grad():
                self.cache[domain] = (self.nets[domain].enhance(z), v)
        z, v = self.cache[domain]
        return score(z[users], v)


def train(
    net: PeaceNet,
    data: RecData,
    domains: Sequence[str],
    history_domains: Sequence[str],
    epochs: int,
    lr: float,
    seed: int,
) -> list[float]:
    """E8 on the fit interactions of ``domains``; returns the mean loss per epoch."""
    cfg = net.config
    users, items = data.fit_in(list(domains))
    hist, hmask = build_history(data, history_domains, cfg.history_len)
    pool = torch.from_numpy(np.concatenate([data.domain_items(d) for d in domains]))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    u_all, i_all = torch.from_numpy(users), torch.from_numpy(items)
    losses: list[float] = []
    assign: tuple[torch.Tensor, torch.Tensor] | None = None
    for epoch in range(epochs):
        assign = refresh_prototypes(net, pool, seed + epoch) if epoch % cfg.refresh_every == 0 else assign
        total = 0.0
        perm = torch.randperm(len(u_all), generator=gen)
        for start in range(0, len(perm), cfg.batch_size):
            b = perm[start : start + cfg.batch_size]
            neg = pool[torch.randint(len(pool), (cfg.negatives,), generator=gen)]
            loss = batch_loss(net, u_all[b], i_all[b], neg, hist, hmask, assign)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(b)
        losses.append(total / max(len(perm), 1))
    return losses


def batch_loss(
    net: PeaceNet,
    users: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    hist: torch.Tensor,
    hmask: torch.Tensor,
    assign: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """E8 for one batch: sampled softmax (E7 logits) + λ · E4 on the entities and the batch's items."""
    cfg = net.config
    ent = net.entities()
    v = net.items(ent)
    h = hist[users]
    z = net.enhance(net.interests(users, h, hmask[users] & (h != pos.unsqueeze(1)), v))
    cand = torch.cat([pos, neg])
    zn, vc = F.normalize(z, dim=-1), F.normalize(v[cand], dim=-1)
    with torch.no_grad():  # the interest that scores the positive (E7's max), ComiRec's hard routing
        k_star = torch.einsum("bkd,bd->bk", zn, vc[: len(pos)]).argmax(dim=1)
    logits = zn[torch.arange(len(pos)), k_star] @ vc.T / cfg.tau_rec
    hit = cand.unsqueeze(0) == pos.unsqueeze(1)
    hit[:, : len(pos)].fill_diagonal_(False)
    loss = F.cross_entropy(logits.masked_fill(hit, -1e9), torch.arange(len(pos)))
    if net.prototypes is not None and assign is not None:
        ent_assign, item_assign = assign
        emb = v[pos] if ent is None else torch.cat([ent, v[pos]])
        target = item_assign[pos] if ent is None else torch.cat([ent_assign, item_assign[pos]])
        loss = loss + cfg.lambda_proto * prototype_loss(emb, net.prototypes, target, cfg.tau_proto)
    return loss


def refresh_prototypes(
    net: PeaceNet, pool: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """k-means over the entities and the training domains' items; sets the bank, returns the
    entities' and every item's cluster (items outside ``pool`` get their nearest centre)."""
    if net.prototypes is None:
        return None
    with torch.no_grad():
        ent = net.entities()
        v = net.items(ent)
        points = v[pool] if ent is None else torch.cat([ent, v[pool]])
        centres, _ = kmeans(points, net.config.prototypes, net.config.kmeans_iters, seed)
        net.prototypes.data[: len(centres)] = centres  # (fewer points than C: the rest stay)
        protos = F.normalize(net.prototypes, dim=-1)
        ent_assign = torch.zeros(0, dtype=torch.long)
        if ent is not None:
            ent_assign = (F.normalize(ent, dim=-1) @ protos.T).argmax(1)
        item_assign = (F.normalize(v, dim=-1) @ protos.T).argmax(1)
    return ent_assign, item_assign
