"""The entity-oriented encoders of PEACE (Gao et al., WSDM 2024, arXiv 2312.01916): entities over
the knowledge graph, items pooled from their entities, users as several interests.

Equation numbers E1–E8 are this package's (listed in :mod:`gnn.rec.peace`), not the paper's.

Entities (categories, brands, intents) start from a learned embedding plus their projected text,
then pass relation-aware messages (R-GCN style, Schlichtkrull et al. 2018; each relation in both
directions has its own ``W_r``, mean-aggregated):

    h⁰_e = E_e + W_x x_e ;   h^{l+1}_e = h^l_e + tanh( Σ_r 1/|N_r(e)| Σ_{u ∈ N_r(e)} W_r^l h^l_u )   (E1)

with ``W_r^l = W^l diag(r^l_r)`` (a shared matrix and one vector per relation and direction).

An item has no id in pre-training: it is its text plus the mean of its entities (its category
path and brand), so items of domains that share no ids still share a space (E2):

    v_i = W_t x_i + 1/|E(i)| Σ_{e ∈ E(i)} h^L_e

A user is ``K`` interests read from their history ``v_1 … v_n`` by self-attention (ComiRec-SA,
Cen et al. 2020), plus a learned per-interest default for users with no history (E3):

    a_{k,j} = softmax_j( w_k · tanh(W_1 v_j) ),   z_k = b_k + Σ_j a_{k,j} v_j
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENTITY_INIT_STD = 0.1  # std of the initial entity embeddings


class EntityEncoder(nn.Module):
    """E1: relation-aware message passing over the entity graph.

    Args:
        n_entities: number of entities; in_dim: width of their text features; dim: ``d``;
        n_relations: relation types (each also gets a reverse); layers: ``L`` (0 = no propagation).
    """

    def __init__(self, n_entities: int, in_dim: int, dim: int, n_relations: int, layers: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(n_entities, dim)
        nn.init.normal_(self.emb.weight, std=ENTITY_INIT_STD)
        self.text = nn.Linear(in_dim, dim, bias=False)
        self.rel = nn.Parameter(torch.ones(layers, 2 * n_relations, dim))
        self.lin = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(layers))
        self.n_relations, self.layers = n_relations, layers

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Entity states ``[n_entities, d]``; ``x`` is ``[≤ n_entities, f]`` (the first rows' text
        features, the rest none); ``edges`` is ``[3, m]`` (head, tail, relation).

        ``W_r`` is factored CompGCN-style (Vashishth et al. 2020) as ``W^l diag(r^l_r)``: one shared
        matrix per layer and a learned vector per relation and direction, so a layer costs one
        ``index_add`` and one ``d × d`` product whatever the number of relations.
        """
        n, slots = self.emb.weight.shape[0], 2 * self.n_relations
        # x may cover only the first entities (a linked KG's entities have no text): the rest get 0
        h: torch.Tensor = self.emb.weight + F.pad(self.text(x), (0, 0, 0, n - x.shape[0]))
        src = torch.cat([edges[0], edges[1]])
        dst = torch.cat([edges[1], edges[0]])
        rel = torch.cat([edges[2], edges[2] + self.n_relations])
        slot = dst * slots + rel
        # 1/|N_r(e)| of each message's (tail, relation) slot
        norm = 1.0 / torch.bincount(slot, minlength=n * slots).clamp_min(1)[slot].unsqueeze(1)
        for layer in range(self.layers):
            msg = F.embedding(src, h) * F.embedding(rel, self.rel[layer]) * norm
            agg = torch.zeros_like(h).index_add_(0, dst, msg)
            h = h + torch.tanh(self.lin[layer](agg))
        return h


def item_entity_table(
    item_entity: torch.Tensor, n_items: int, n_entities: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's entities as a padded ``[n_items, m]`` table (``n_entities`` pads) and its degree
    (clamped to 1), so E2 can pool any subset of items with one gather."""
    item, ent = item_entity[0], item_entity[1]
    deg = torch.bincount(item, minlength=n_items)
    order = torch.argsort(item, stable=True)
    item, ent = item[order], ent[order]
    start = torch.cumsum(deg, 0) - deg
    slot = torch.arange(len(item)) - start[item]
    table = torch.full((n_items, int(deg.max()) if len(item) else 1), n_entities, dtype=torch.long)
    table[item, slot] = ent
    return table, deg.clamp_min(1).unsqueeze(1).to(torch.float32)


def pool_items(entity_h: torch.Tensor, table: torch.Tensor, deg: torch.Tensor) -> torch.Tensor:
    """The mean entity state of each row of ``table`` (E2's second term; zeros without entities)."""
    padded = torch.cat([entity_h, entity_h.new_zeros(1, entity_h.shape[1])])
    return F.embedding_bag(table, padded, mode="sum", padding_idx=len(entity_h)) / deg


class MultiInterest(nn.Module):
    """E3: ``K`` self-attentive interests over a padded history.

    Args:
        dim: ``d``; interests: ``K``.
    """

    def __init__(self, dim: int, interests: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, dim, bias=False)
        self.w2 = nn.Linear(dim, interests, bias=False)
        self.default = nn.Parameter(torch.zeros(interests, dim))
        nn.init.normal_(self.default, std=0.1)

    def forward(self, v: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``v`` ``[N, d]`` item vectors, ``hist`` ``[B, L]`` rows of ``v``, ``mask`` ``[B, L]``
        (True = real) → ``[B, K, d]``. The attention logits are computed once per item and gathered."""
        logits = F.embedding(hist, self.w2(torch.tanh(self.w1(v)))).transpose(1, 2)  # [B, K, L]
        keep = mask.unsqueeze(1)
        attn = torch.softmax(logits.masked_fill(~keep, -1e9), dim=-1) * keep  # empty history → 0
        out: torch.Tensor = self.default + attn @ F.embedding(hist, v)
        return out
