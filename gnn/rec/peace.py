"""PEACE: Prototype lEarning Augmented transferable framework for Cross-domain rEcommendation
(Gao et al., WSDM 2024, arXiv 2312.01916).

PEACE pre-trains user and item representations over an entity graph that links users, items and
entities of several *source* domains, then transfers them to *target* domains, including ones with
(almost) no interactions. The paper's full text and code were not available here; this is a
reading of its abstract, and every choice it had to make is stated below. Equation numbers are
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
  the distinct items among the batch's positives plus ``negatives`` uniform items of the training
  domains (so an accidental hit is never a negative). As in ComiRec's training, the user side of
  each row is the one interest that attains E7's max for the positive (hard routing), so the
  softmax costs one interest, not ``K``.

Cost: a training step computes E2–E3 only for the items the batch touches (positives, negatives,
the batch users' histories) and E1 on the whole entity graph, which is catalogue-sized (≈10³
categories, brands and intents at every world scale), so it is neither cached nor sampled; k-means
(E4's refresh) sees every item once per refresh, in chunks. Evaluation and export compute every
item vector once per domain (in chunks) and interests per user batch.

Transfer: pre-train on the source domains' interactions (histories limited to source items), then
for each target domain copy the model, add zero-initialised item and user id embeddings (to
``v_i`` and to every ``z_k``) and fine-tune on the target's interactions, the history now being
every domain. A target without interactions (the cold-start domain) is served zero-shot. With a
single domain (no source), pre-training runs on the target's own interactions. Serving
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

from gnn import distributed
from gnn.rec.attention import PrototypeAttention
from gnn.rec.encoder import ENTITY_INIT_STD, EntityEncoder, MultiInterest, item_entity_table, pool_items
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
        max_batches: cap on the batches of an epoch (None = every interaction once per epoch).
        use_prototypes, use_proto_attention, use_entity_graph, single_interest: ablation switches.
        linked_init: std of the initial embeddings of a linked KG's entities (0: start at zero, so
            an entity no training signal reaches, e.g. a held-out film's, is only its neighbours).
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
    max_batches: int | None = None
    use_prototypes: bool = True
    use_proto_attention: bool = True
    use_entity_graph: bool = True
    single_interest: bool = False
    linked_init: float = 0.1
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
        # a linked KG's entities (after the catalogue's) have no text: E1 projects only the rest
        self.entity_x = torch.from_numpy(data.entity_x[: data.catalogue_entities()])
        self.kg_edges = torch.from_numpy(data.kg_edges)
        self.item_table, self.item_deg = item_entity_table(
            torch.from_numpy(data.item_entity), data.n_items, data.n_entities
        )
        self.entity: EntityEncoder | None = None
        if config.use_entity_graph:
            n_rel = len(data.relations)
            self.entity = EntityEncoder(data.n_entities, data.entity_x.shape[1], d, n_rel, config.layers)
            with torch.no_grad():  # rescale (not redraw) the linked rows: the seed's stream is unchanged
                self.entity.emb.weight[data.catalogue_entities() :] *= config.linked_init / ENTITY_INIT_STD
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

    def items(self, entity_h: torch.Tensor | None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """E2 for the items at ``rows`` (every item when None), plus the id embedding once ids are on."""
        x = self.item_x if rows is None else self.item_x[rows]
        v: torch.Tensor = self.item_text(x)
        if entity_h is not None:
            table, deg = (
                (self.item_table, self.item_deg)
                if rows is None
                else (self.item_table[rows], self.item_deg[rows])
            )
            v = v + pool_items(entity_h, table, deg)
        if self.use_ids:
            v = v + (self.item_id.weight if rows is None else self.item_id(rows))
        return v

    def all_items(self, entity_h: torch.Tensor | None = None, chunk: int = 65536) -> torch.Tensor:
        """Every item's E2 vector without gradients, ``chunk`` items at a time (evaluation, k-means);
        ``entity_h``: E1's states when the caller has them already."""
        with torch.no_grad():
            ent = self.entities() if entity_h is None else entity_h
            parts = [
                self.items(ent, torch.arange(s, min(s + chunk, self.n_items)))
                for s in range(0, self.n_items, chunk)
            ]
        return torch.cat(parts) if parts else self.item_text.weight.new_zeros(0, self.config.dim)

    def interests(
        self, users: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """E3 (raw interests ``[B, K, d]``); ``hist`` indexes rows of ``v``, ``len(v)`` pads."""
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
    """E7: ``[B, N]`` = max over interests of the cosine of ``z`` ``[B, K, d]`` and ``v`` ``[N, d]``
    (one interest at a time, so no ``[B, K, N]`` tensor is held)."""
    zn, vn = F.normalize(z, dim=-1), F.normalize(v, dim=-1)
    out = zn[:, 0] @ vn.T
    for k in range(1, zn.shape[1]):
        out = torch.maximum(out, zn[:, k] @ vn.T)
    return out


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


def localise(hist: torch.Tensor, extra: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted item rows a batch touches (``extra`` and the real entries of ``hist``) and ``hist``
    re-indexed into them (padding ``n_items`` → ``len(rows)``). A presence mask over the catalogue
    instead of a sort: ``O(n_items)`` flags, cheaper than sorting ``B·L`` ids at every scale."""
    present = torch.zeros(n_items + 1, dtype=torch.bool)
    present[hist.flatten()] = True
    present[extra] = True
    present[n_items] = False
    rows = present.nonzero().squeeze(1)
    local = torch.cumsum(present, 0) - 1
    local[n_items] = len(rows)
    return rows, local[hist]


def distinct(ids: torch.Tensor, n: int) -> torch.Tensor:
    """The sorted distinct values of ``ids`` (all in ``[0, n)``), by a presence mask."""
    present = torch.zeros(n, dtype=torch.bool)
    present[ids] = True
    return present.nonzero().squeeze(1)


class Peace:
    """PEACE as a :class:`~gnn.rec.evaluate.Recommender`: pre-train on the sources, fine-tune per target.

    Scoring computes every item's vector once per domain (in chunks, cached until the next ``fit``)
    and each requested user's interests from their history on the fly, so nothing of size
    ``users × items`` or ``users × K × d`` is held for the whole population.
    """

    def __init__(self, config: PeaceConfig, name: str = "PEACE") -> None:
        self.config, self.name = config, name
        self.nets: dict[str, PeaceNet] = {}
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.history: tuple[torch.Tensor, torch.Tensor] | None = None
        self.losses: dict[str, list[float]] = {}
        self.data: RecData | None = None

    def fit(self, data: RecData, targets: Sequence[str]) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.data, self.cache, self.history = data, {}, None
        # one domain (e.g. MovieLens): pre-train on the target itself, then fine-tune with ids
        sources = [d for d in data.domains if d not in targets] or list(targets)
        base = PeaceNet(cfg, data)
        self.losses["pretrain"] = train(
            base, data, sources, sources, cfg.pretrain_epochs, cfg.lr, cfg.seed, cfg.max_batches
        )
        self.nets = {d: base for d in sources if d not in targets}
        for t in targets:
            net = copy.deepcopy(base)
            net.use_ids = True
            if len(data.fit_in([t])[0]):
                ep, lr = cfg.finetune_epochs, cfg.finetune_lr
                self.losses[t] = train(net, data, [t], data.domains, ep, lr, cfg.seed + 1, cfg.max_batches)
            self.nets[t] = net

    def item_vectors(self, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's vector under ``domain``'s network and ``domain``'s own rows of it (cached)."""
        assert self.data is not None, "fit first"
        if domain not in self.cache:
            v = self.nets[domain].all_items()
            self.cache[domain] = (v, v[torch.from_numpy(self.data.domain_items(domain))])
        return self.cache[domain]

    def user_interests(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        """Raw interests ``[len(users), K, d]`` (E3 over each user's full history)."""
        assert self.data is not None, "fit first"
        if self.history is None:
            self.history = build_history(self.data, self.data.domains, self.config.history_len)
        hist, mask = self.history
        v, _ = self.item_vectors(domain)
        rows, local = localise(hist[users], users.new_zeros(0), self.data.n_items)
        with torch.no_grad():
            return self.nets[domain].interests(users, local, mask[users], v[rows])

    def embed(self, domain: str, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw interests ``[n_users, K, d]`` (full history) and ``domain``'s item vectors."""
        assert self.data is not None, "fit first"
        n = self.data.n_users
        z = [self.user_interests(torch.arange(s, min(s + chunk, n)), domain) for s in range(0, n, chunk)]
        return torch.cat(z), self.item_vectors(domain)[1]

    def scores(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        with torch.no_grad():
            return score(
                self.nets[domain].enhance(self.user_interests(users, domain)), self.item_vectors(domain)[1]
            )


def train(
    net: PeaceNet,
    data: RecData,
    domains: Sequence[str],
    history_domains: Sequence[str],
    epochs: int,
    lr: float,
    seed: int,
    max_batches: int | None = None,
    timings: list[tuple[float, float]] | None = None,
) -> list[float]:
    """E8 on the fit interactions of ``domains``; returns the mean loss per epoch. ``max_batches``
    cuts each epoch short (the benchmark times a sample of batches at scale); ``timings`` receives
    each epoch's (k-means refresh, batches) seconds, the run's one-off set-up (histories, sampling
    pool, optimiser) excluded, as :func:`gnn.rec.lightgcn.train_lightgcn` times its epochs."""
    import time

    cfg = net.config
    users, items = data.fit_in(list(domains))
    hist, hmask = build_history(data, history_domains, cfg.history_len)
    pool = torch.from_numpy(np.concatenate([data.domain_items(d) for d in domains]))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)
    size = distributed.world()[1]
    step = distributed.wrap(distributed.loss_module(net, batch_loss)) if size > 1 else None
    u_all, i_all = torch.from_numpy(users), torch.from_numpy(items)
    losses: list[float] = []
    assign: tuple[torch.Tensor, torch.Tensor] | None = None
    for epoch in range(epochs):
        t0 = time.perf_counter()
        assign = refresh_prototypes(net, pool, seed + epoch) if epoch % cfg.refresh_every == 0 else assign
        t1 = time.perf_counter()
        total = 0.0
        perm = torch.randperm(len(u_all), generator=gen)
        if max_batches is not None:
            perm = perm[: max_batches * cfg.batch_size]
        for start in range(0, len(perm), cfg.batch_size):
            b = perm[start : start + cfg.batch_size]
            neg = pool[torch.randint(len(pool), (cfg.negatives,), generator=gen)]
            if step is None:
                loss = batch_loss(net, u_all[b], i_all[b], neg, hist, hmask, assign)
            else:  # this rank's rows of the same batch (gnn.distributed)
                rows, factor = distributed.part(len(b))
                share = (i_all[b], factor)
                loss = step(u_all[b[rows]], i_all[b[rows]], neg, hist, hmask, assign, share)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(b) / size  # a rank's share: the ranks' sum is the mean
        losses.append(distributed.all_sum(total) / max(len(perm), 1))
        if timings is not None:
            timings.append((t1 - t0, time.perf_counter() - t1))
    return losses


def batch_loss(
    net: PeaceNet,
    users: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    hist: torch.Tensor,
    hmask: torch.Tensor,
    assign: tuple[torch.Tensor, torch.Tensor] | None,
    share: tuple[torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """E8 for one batch: sampled softmax (E7 logits) + λ · E4 on the entities and the batch's items.

    Only the items the batch touches get a vector: its positives, its negatives and its users'
    histories (:func:`localise`); E1 runs on the whole entity graph every batch (entities are the
    catalogue's categories, brands and intents, about 10³ whatever the number of users and items,
    so there is nothing to cache). The softmax's candidates are the distinct items among the
    positives and negatives: each row's own positive is its target and every other candidate a
    negative, so an accidental hit (another row's positive or a negative equal to the row's
    positive) is never counted against it.

    ``share`` = (the whole batch's positives, :func:`gnn.distributed.part`'s factor) when
    ``users, pos`` are one rank's rows of the batch: the candidates are still the whole batch's,
    and the means over rows become this rank's share of them (DDP's average over the ranks is then
    the 1-process loss's gradient); the entity rows of E4, the same on every rank, keep weight 1.
    """
    cfg = net.config
    h = hist[users]
    cand = distinct(torch.cat([pos if share is None else share[0], neg]), net.n_items)
    rows, local = localise(h, cand, net.n_items)
    ent = net.entities()
    v = net.items(ent, rows)
    z = net.enhance(net.interests(users, local, hmask[users] & (h != pos.unsqueeze(1)), v))
    target = torch.searchsorted(cand, pos)
    zn, vc = F.normalize(z, dim=-1), F.normalize(F.embedding(torch.searchsorted(rows, cand), v), dim=-1)
    with torch.no_grad():  # the interest that scores the positive (E7's max), ComiRec's hard routing
        k_star = torch.einsum("bkd,bd->bk", zn, vc[target]).argmax(dim=1)
    routed = zn.gather(1, k_star.view(-1, 1, 1).expand(-1, 1, zn.shape[2])).squeeze(1)
    logits = routed @ vc.T / cfg.tau_rec
    if share is not None:
        return _shared_loss(
            net, logits, target, ent, F.embedding(torch.searchsorted(rows, pos), v), pos, assign, share
        )
    loss = F.cross_entropy(logits, target)
    if net.prototypes is not None and assign is not None:
        ent_assign, item_assign = assign
        v_pos = F.embedding(torch.searchsorted(rows, pos), v)
        emb = v_pos if ent is None else torch.cat([ent, v_pos])
        proto_target = item_assign[pos] if ent is None else torch.cat([ent_assign, item_assign[pos]])
        loss = loss + cfg.lambda_proto * prototype_loss(emb, net.prototypes, proto_target, cfg.tau_proto)
    return loss


def _shared_loss(
    net: PeaceNet,
    logits: torch.Tensor,
    target: torch.Tensor,
    ent: torch.Tensor | None,
    v_pos: torch.Tensor,
    pos: torch.Tensor,
    assign: tuple[torch.Tensor, torch.Tensor] | None,
    share: tuple[torch.Tensor, float],
) -> torch.Tensor:
    """:func:`batch_loss`'s E8 for one rank's rows: ``factor`` × the sums over its rows, and E4's
    mean over (entities + the batch's ``n`` positives) split as (E·mean_ent + n·factor·sum_rows) / (E + n)."""
    cfg, (batch_pos, factor) = net.config, share
    loss = F.cross_entropy(logits, target, reduction="sum") * factor
    if net.prototypes is None or assign is None:
        return loss
    ent_assign, item_assign = assign
    n, n_ent = len(batch_pos), 0 if ent is None else len(ent)
    proto = logits.new_zeros(())
    if len(pos):
        items = prototype_loss(v_pos, net.prototypes, item_assign[pos], cfg.tau_proto) * len(pos)
        proto = proto + n * factor * items
    if ent is not None and n_ent:
        proto = proto + n_ent * prototype_loss(ent, net.prototypes, ent_assign, cfg.tau_proto)
    return loss + cfg.lambda_proto * proto / (n_ent + n)


def refresh_prototypes(
    net: PeaceNet, pool: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """k-means over the entities and the training domains' items; sets the bank, returns the
    entities' and every item's cluster (items outside ``pool`` get their nearest centre)."""
    if net.prototypes is None:
        return None
    with torch.no_grad():
        ent = net.entities()
        v = net.all_items(ent)
        points = v[pool] if ent is None else torch.cat([ent, v[pool]])
        centres, _ = kmeans(points, net.config.prototypes, net.config.kmeans_iters, seed)
        net.prototypes.data[: len(centres)] = centres  # (fewer points than C: the rest stay)
        protos = F.normalize(net.prototypes, dim=-1)
        ent_assign = torch.zeros(0, dtype=torch.long)
        if ent is not None:
            ent_assign = (F.normalize(ent, dim=-1) @ protos.T).argmax(1)
        item_assign = (F.normalize(v, dim=-1) @ protos.T).argmax(1)
    return ent_assign, item_assign
