"""A heterogeneous GraphSAGE trained for user–intent link prediction on weak labels.

Hamilton, Ying & Leskovec (2017), "Inductive Representation Learning on Large Graphs" (GraphSAGE),
made heterogeneous as in Schlichtkrull et al. (2018, R-GCN): one SAGE convolution per edge type
(every type also read in reverse), summed per destination type, with a residual connection:

.. math::

    h_v^{(0)} = W^{\\text{in}}_{\\tau(v)} \\tilde x_v + e_v, \\qquad
    h_v^{(l+1)} = h_v^{(l)} + \\sigma\\Big(\\sum_{r \\in R:\\, \\mathrm{dst}(r) = \\tau(v)}
        W^{(l)}_{r,1} h_v^{(l)} + W^{(l)}_{r,2}\\, \\mathrm{mean}_{u \\in N_r(v)} h_u^{(l)}\\Big)

(:math:`\\tilde x` the standardised node features: MiniLM text embeddings where a label has text,
:math:`e_v` a learned id embedding; σ = ReLU, none after the last layer). The decoder is a dot
product, :math:`\\hat y_{ui} = \\sigma(z_u^\\top z_i)`, trained with binary cross-entropy on the
weak positive pairs of :mod:`gnn.audience.weak_labels` against ``negatives`` uniformly drawn
(user, intent) pairs per positive. The weak labels are training targets only: there is no
user–intent edge in the message-passing graph. 10% of the positive pairs are held out to report a
weak-label AUC (a training diagnostic, not the evaluation).

**Scale.** A store with at most ``batch_users`` users trains full-batch (every step sees the whole
graph; every node type, users included, has an id embedding :math:`e_v`). A larger one (the 1M-user
benchmark world) trains on user-sampled graphs (:mod:`gnn.audience.minibatch`): each step keeps
every non-user node but only ``batch_users`` sampled users (with weak labels) and their edges. A
user is then seen in a few steps at most, so users get **no** id embedding: :math:`h_u^{(0)} = 0`
(plus numeric features, if any) and a user is what its items, queries and domains say, which makes
the model inductive over users. Weak labels are computed for at most ``label_users`` sampled users.
Under torchrun (:mod:`gnn.distributed`) every rank runs each step's forward pass and takes its
share of the loss pairs (:func:`_shared_bce`).
Final embeddings come from one pass over the full graph on sparse adjacencies (memory: the node
states only), and scoring is one matrix product.

A campaign ``c`` with intents T(c) and normalised TARGETS weights w scores users by a smooth
maximum over its intents, in logit space (sigmoids saturate and would tie the top users):

.. math::  s(u, c) = \\log \\sum_{i \\in T(c)} w_{ci} \\exp(z_u^\\top z_i).

With no KG the intents have no edges to the catalogue: the GNN then learns intent vectors only
from the text-similarity fallback labels (if ``text_fallback`` and features are on); without
those it has nothing to learn from and ``fit`` says so. ``explain`` lists the user's interacted
items closest to the campaign's intents in embedding space, as User–Item–Category paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gnn import distributed
from gnn.audience.base import AudienceError, GraphPath, load_campaign, positions, score_frame
from gnn.audience.weak_labels import WeakLabelConfig, kg_footprint, text_footprint, weak_labels
from graph.store import GraphStore
from graph.subgraph import EdgeKey

if TYPE_CHECKING:
    import torch

    from gnn.audience.minibatch import UserSampler

GNN_NODES = ("User", "Item", "Category", "Intent", "Domain", "Campaign", "Query")
GNN_EDGES: tuple[EdgeKey, ...] = (
    ("User", "INTERACTED", "Item"),
    ("Item", "BELONGS_TO", "Category"),
    ("Category", "SUBCATEGORY_OF", "Category"),
    ("User", "SEARCHED", "Query"),
    ("Query", "CLICKED", "Item"),
    ("User", "ACTIVE_IN", "Domain"),
    ("Item", "IN_DOMAIN", "Domain"),
    ("Campaign", "IN_DOMAIN", "Domain"),
    ("Campaign", "TARGETS", "Intent"),
    ("Intent", "NEEDS", "Category"),
    ("Category", "SERVES", "Intent"),
    ("Intent", "CO_OCCURS_WITH", "Intent"),
    ("Intent", "PRECEDES", "Intent"),
)


@dataclass(frozen=True)
class GNNConfig:
    """Args: dim: hidden size; layers: SAGE layers; epochs, lr: Adam steps and rate; negatives: per
    positive; features: MiniLM text features (off: id embeddings and numeric properties only);
    batch_users: users per step (more users than this: user-sampled training, see the module
    docstring); label_users: users whose weak labels are computed (a random sample beyond that);
    labels: weak-label settings; seed: weights, negatives, samples and the held-out split."""

    dim: int = 64
    layers: int = 2
    epochs: int = 150
    lr: float = 0.01
    negatives: int = 4
    features: bool = True
    batch_users: int = 20_000
    label_users: int = 200_000
    labels: WeakLabelConfig = field(default_factory=WeakLabelConfig)
    seed: int = 0
    node_types: tuple[str, ...] = GNN_NODES
    edge_types: tuple[EdgeKey, ...] = GNN_EDGES


def _model(data: Any, dim: int, layers: int, user_ids: bool) -> torch.nn.Module:
    import torch
    from torch_geometric.nn import HeteroConv, SAGEConv

    class HeteroSAGE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = torch.nn.ModuleDict(
                {t: torch.nn.Linear(data[t].x.size(1), dim) for t in data.node_types if "x" in data[t]}
            )
            self.emb = torch.nn.ModuleDict(
                {
                    t: torch.nn.Embedding(data[t].num_nodes, dim)
                    for t in data.node_types
                    if user_ids or t != "User"
                }
            )
            self.convs = torch.nn.ModuleList(
                HeteroConv({et: SAGEConv((dim, dim), dim) for et in data.edge_types}, aggr="sum")
                for _ in range(layers)
            )

        def forward(self, x: dict[str, Any], edges: dict[Any, Any], sizes: dict[str, int]) -> dict[str, Any]:
            h: dict[str, Any] = {t: torch.zeros(n, dim) for t, n in sizes.items()}
            h.update({t: emb.weight for t, emb in self.emb.items()})
            for t, lin in self.inp.items():
                h[t] = h[t] + lin(x[t])
            for n, conv in enumerate(self.convs):
                out = conv(h, edges)  # edge indices or sparse adjacencies
                last = n == len(self.convs) - 1
                h = {t: h[t] + (out[t] if last else out[t].relu()) if t in out else h[t] for t in h}
            return h

    return HeteroSAGE()


class GNNTargeter:
    """Heterogeneous GraphSAGE link predictor (see the module docstring)."""

    name = "gnn"
    config_type = GNNConfig

    def __init__(self) -> None:
        self.store: GraphStore | None = None
        self.config = GNNConfig()
        self.z: dict[str, np.ndarray] = {}
        self.ids: dict[str, list[str]] = {}
        self.info: dict[str, Any] = {}

    def fit(self, store: GraphStore, config: GNNConfig | None = None) -> GNNTargeter:
        import torch

        from gnn.audience.minibatch import UserSampler
        from loaders.pyg import GraphDataConfig, build_graph_data

        self.store, self.config, self.info = store, config or GNNConfig(), {}
        c = self.config
        torch.manual_seed(c.seed)
        clock = _Clock()
        gd = build_graph_data(
            store,
            GraphDataConfig(
                node_types=c.node_types, edge_types=c.edge_types, reverse_edges=True, features=c.features
            ),
        )
        data = gd.data
        self.ids = {t: list(gd.id_maps.to_id[t]) for t in data.node_types}
        clock.lap("read_s")
        labels = self._labels(store, data)
        clock.lap("labels_s")
        sizes = {t: int(data[t].num_nodes) for t in data.node_types}
        model = _model(data, c.dim, c.layers, user_ids=sizes["User"] <= c.batch_users)
        x = {t: _standardise(data[t].x) for t in data.node_types if "x" in data[t]}
        sampler = UserSampler({et: data[et].edge_index.numpy() for et in data.edge_types}, sizes)
        self.info["graph_version"] = gd.graph_version.as_dict()
        del gd, data  # the sampler holds the edges; nothing else is needed again
        gen = torch.Generator().manual_seed(c.seed)
        pairs = _Pairs.split(labels, self.ids, gen)
        self.info.update(_train(model, x, sampler, pairs, c, gen))
        clock.lap("train_s")
        model.eval()
        with torch.no_grad():
            self.z = {t: v.numpy() for t, v in model(x, sampler.full(), sizes).items()}
        clock.lap("infer_s")
        self.info.update(val_weak_auc=pairs.val_auc(self.z, gen), positives=len(labels), **clock.laps)
        return self

    def _labels(self, store: GraphStore, data: Any) -> pd.DataFrame:
        lc = self.config.labels
        foot = kg_footprint(store)
        missing = sorted(set(self.ids["Intent"]) - set(foot["intent"]))
        if missing and lc.text_fallback and "x" in data["Intent"] and self.config.features:
            idx = positions(self.ids["Intent"], missing)
            text = text_footprint(
                missing,
                data["Intent"].x[idx].numpy(),
                self.ids["Category"],
                data["Category"].x.numpy(),
                lc.top_m,
            )
            foot = pd.concat([foot, text], ignore_index=True)
        self.info["footprint"] = {
            "kg_intents": len(set(self.ids["Intent"]) - set(missing)),
            "text_intents": 0,
        }
        if lc.text_fallback and self.config.features:
            self.info["footprint"]["text_intents"] = len(missing)
        inter = store.edge_table(("User", "INTERACTED", "Item"), ["ts"]).rename(
            columns={"head": "user", "tail": "item"}
        )
        users = self.ids["User"]
        if len(users) > self.config.label_users:
            rng = np.random.default_rng(self.config.seed)
            pool = rng.choice(np.asarray(users, dtype=object), self.config.label_users, replace=False)
            inter = inter[inter["user"].isin(pool)].reset_index(drop=True)
        self.info["label_users"] = min(len(users), self.config.label_users)
        belongs = store.edge_table(("Item", "BELONGS_TO", "Category")).rename(
            columns={"head": "item", "tail": "category"}
        )
        labels = weak_labels(inter, belongs[["item", "category"]], foot, lc.half_life_days)
        if not len(labels):
            raise AudienceError(
                "the GNN has no user–intent labels to learn from: the store has no KG linking intents to "
                "categories (NEEDS/SERVES) and the text fallback is off or has no features; load a KG "
                "(mokg ingest --with-truth-kg, or a mined one) or turn on features"
            )
        return labels

    def _ready(self) -> GraphStore:
        if self.store is None or not self.z:
            raise AudienceError("the GNN targeter is not fitted; call fit(store, config) first")
        return self.store

    def embeddings(self, label: str) -> tuple[list[str], np.ndarray]:
        """Node ids and final-layer embeddings of ``label`` (the lookalike space for users)."""
        self._ready()
        return self.ids[label], self.z[label]

    def intent_vector(self, campaign: str) -> tuple[np.ndarray, np.ndarray]:
        """The campaign's intent embeddings and their normalised TARGETS weights."""
        info = load_campaign(self._ready(), campaign)
        idx = positions(self.ids["Intent"], list(info.intents))
        keep = idx >= 0
        if not keep.any():
            raise AudienceError(f"campaign {campaign!r} targets no intent the GNN has seen")
        w = np.asarray(info.weights)[keep]
        return self.z["Intent"][idx[keep]], w / w.sum()

    def score(self, campaign: str) -> pd.DataFrame:
        zi, w = self.intent_vector(campaign)
        logits = self.z["User"] @ zi.T
        return score_frame(self.ids["User"], log_weighted_sum_exp(logits, w))

    def explain(self, user: str, campaign: str) -> list[GraphPath]:
        store = self._ready()
        zi, w = self.intent_vector(campaign)
        items = store.run(
            "MATCH (u:User {id: $id})-[:INTERACTED]->(i:Item)-[:BELONGS_TO]->(c:Category) "
            "RETURN i.id AS item, c.id AS category",
            {"id": user},
        )
        if not len(items):
            return []
        rows = positions(self.ids["Item"], items["item"])
        sim = (self.z["Item"][rows] @ zi.T) @ w
        order = np.argsort(-sim)[:10]
        return [
            GraphPath(
                (user, items["item"].iloc[k], items["category"].iloc[k]),
                ("User", "Item", "Category"),
                ("INTERACTED", "BELONGS_TO"),
                float(sim[k]),
            )
            for k in order
        ]


class _Clock:
    """Seconds per phase of a fit (kept in ``info`` for the benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.t = round(now - self.t, 3), now


def log_weighted_sum_exp(logits: np.ndarray, w: np.ndarray) -> np.ndarray:
    """log Σ_i w_i exp(l_ui) per row, computed stably."""
    top = logits.max(axis=1, keepdims=True)
    return np.asarray((top + np.log(np.exp(logits - top) @ w[:, None])).ravel())


def _standardise(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return (x - x.mean(0)) / (x.std(0) + 1e-6) if x.size(0) > 1 else x


@dataclass
class _Pairs:
    """Weak positive pairs as (user row, intent row) tensors, split 90/10 into train and held-out."""

    user: torch.Tensor
    intent: torch.Tensor
    train: torch.Tensor
    val: torch.Tensor
    n_users: int
    n_intents: int

    @classmethod
    def split(cls, labels: pd.DataFrame, ids: dict[str, list[str]], gen: torch.Generator) -> _Pairs:
        import torch

        u = torch.as_tensor(positions(ids["User"], labels["user"]))
        i = torch.as_tensor(positions(ids["Intent"], labels["intent"]))
        perm = torch.randperm(len(u), generator=gen)
        n_val = len(u) // 10
        return cls(u, i, perm[n_val:], perm[:n_val], len(ids["User"]), len(ids["Intent"]))

    def val_auc(self, z: dict[str, np.ndarray], gen: torch.Generator) -> float | None:
        """Weak-label AUC of the held-out pairs against as many uniformly drawn (user, intent) pairs."""
        import torch

        from gnn.audience.metrics import auc

        n = max(len(self.val), 1)
        nu = torch.randint(0, self.n_users, (n,), generator=gen).numpy()
        ni = torch.randint(0, self.n_intents, (n,), generator=gen).numpy()
        zu, zi = z["User"], z["Intent"]
        pos = (zu[self.user[self.val].numpy()] * zi[self.intent[self.val].numpy()]).sum(-1)
        neg = (zu[nu] * zi[ni]).sum(-1)
        labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
        return auc(np.r_[pos, neg], labels) if len(self.val) else None


def _train(
    model: torch.nn.Module,
    x: dict[str, Any],
    sampler: UserSampler,
    pairs: _Pairs,
    c: GNNConfig,
    gen: torch.Generator,
) -> dict[str, Any]:
    """Adam on the weak positives (full-batch, or user-sampled steps); returns the last loss."""
    import torch

    from gnn.audience.minibatch import UserGrouped

    full = pairs.n_users <= c.batch_users
    edges = sampler.batch(None) if full else None
    u, i = pairs.user[pairs.train], pairs.intent[pairs.train]
    grouped = UserGrouped(u.numpy(), pairs.n_users)
    candidates = torch.as_tensor(np.flatnonzero(np.diff(grouped.ptr)))
    opt = torch.optim.Adam(model.parameters(), lr=c.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loss = torch.tensor(0.0)
    size = distributed.world()[1]
    ddp = distributed.wrap(distributed.loss_module(model, _shared_bce)) if size > 1 else None
    for _ in range(c.epochs):
        model.train()
        opt.zero_grad()
        if full:
            bu, bi, n_batch, bx, bedges = u, i, pairs.n_users, x, edges
        else:
            pick = candidates[torch.randperm(len(candidates), generator=gen)[: c.batch_users]]
            users = np.sort(pick.numpy())
            rows, rank = grouped.take(users)
            bu, bi, n_batch = torch.as_tensor(rank), i[rows], len(users)
            bx = {t: v[users] if t == "User" else v for t, v in x.items()}
            bedges = sampler.batch(users)
        sizes = {**sampler.sizes, "User": n_batch}
        if ddp is not None:  # the forward does not draw from gen: the same negatives as below
            nu = torch.randint(0, n_batch, (len(bu) * c.negatives,), generator=gen)
            ni = torch.randint(0, pairs.n_intents, (len(bu) * c.negatives,), generator=gen)
            loss = ddp(bx, bedges, sizes, (bu, bi), (nu, ni))
        else:
            h = model(bx, bedges, sizes)
            nu = torch.randint(0, n_batch, (len(bu) * c.negatives,), generator=gen)
            ni = torch.randint(0, pairs.n_intents, (len(bu) * c.negatives,), generator=gen)
            pos = (h["User"][bu] * h["Intent"][bi]).sum(-1)
            neg = (h["User"][nu] * h["Intent"][ni]).sum(-1)
            loss = loss_fn(torch.cat([pos, neg]), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]))
        loss.backward()
        opt.step()
    final = loss.item() if ddp is None else distributed.all_sum(loss.item() / size)
    return {"final_loss": final, "full_batch": full, "steps": c.epochs}


def _shared_bce(
    model: torch.nn.Module,
    x: dict[str, Any],
    edges: dict[Any, Any],
    sizes: dict[str, int],
    positive: tuple[Any, Any],
    negative: tuple[Any, Any],
) -> torch.Tensor:
    """The BCE of :func:`_train` (after ``model``'s forward) as this rank's share
    (:func:`gnn.distributed.part`) of its mean over the ``P`` positive and ``N`` negative pairs,
    ``(P·f_P·Σ_pos + N·f_N·Σ_neg) / (P + N)`` over this rank's slices: DDP's average over the
    ranks is the 1-process loss's gradient. The forward pass over the step's graph runs whole on
    every rank (a GraphSAGE layer needs every neighbour's state), so only the loss is divided:
    the ranks reproduce one process, they do not share its message passing."""
    import torch.nn.functional as F

    h = model(x, edges, sizes)
    total: torch.Tensor = h["User"].new_zeros(())
    n = len(positive[0]) + len(negative[0])
    for (users, intents), label in ((positive, 1.0), (negative, 0.0)):
        mine, factor = distributed.part(len(users))
        logits = (h["User"][users[mine]] * h["Intent"][intents[mine]]).sum(-1)
        target = logits.new_full(logits.shape, label)
        total = total + len(users) * factor * F.binary_cross_entropy_with_logits(
            logits, target, reduction="sum"
        )
    return total / max(n, 1)
