"""Personalised PageRank from the campaign's intents over the heterogeneous graph.

Page, Brin, Motwani & Winograd (1999), "The PageRank citation ranking", personalised as in
Haveliwala (2002), "Topic-sensitive PageRank". With the symmetric weighted adjacency ``A`` of the
selected edge types (:mod:`gnn.audience.graphview`; weight = edge confidence), degrees
:math:`d = A\\mathbf{1}`, the random-walk matrix :math:`P = D^{-1}A`, and the restart distribution
:math:`r_c` on the intents the campaign ``c`` TARGETS (proportional to the TARGETS confidence),
power iteration computes

.. math::

    \\pi^{(t+1)} = \\alpha\\, r_c + (1-\\alpha)\\left(P^\\top \\pi^{(t)} + m^{(t)} r_c\\right),
    \\qquad m^{(t)} = \\sum_{v: d_v = 0} \\pi^{(t)}_v

(dangling mass restarts) until :math:`\\lVert \\pi^{(t+1)} - \\pi^{(t)} \\rVert_1 < \\text{tol}`.
A user's score is :math:`\\pi_u / d_u^{\\beta}` (``degree_power`` β; 0 keeps plain PPR, which favours
active users). Edges through the campaign (TARGETS, IN_DOMAIN, ACTIVE_IN) let mass reach the users
of the campaign's domain even with no KG; the KG relations (NEEDS, SERVES, CO_OCCURS_WITH,
PRECEDES) carry it to the categories, items and users of the intent; a KG a user loaded (SAME_AS
and the relation types declared in the store, :func:`~gnn.audience.base.declared_kg_edges`) is
walked too unless ``store_kg`` is off. ``explain`` gives a shortest
path from each intent to the user (BFS), weighted by its random-walk probability.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from gnn.audience.base import AudienceError, GraphPath, declared_kg_edges, load_campaign, score_frame
from gnn.audience.graphview import GraphView, read_graph_view
from graph.store import GraphStore
from graph.subgraph import EdgeKey

PPR_EDGES: tuple[EdgeKey, ...] = (
    ("User", "INTERACTED", "Item"),
    ("Item", "BELONGS_TO", "Category"),
    ("Category", "SUBCATEGORY_OF", "Category"),
    ("User", "SEARCHED", "Query"),
    ("Query", "CLICKED", "Item"),
    ("Campaign", "TARGETS", "Intent"),
    ("Campaign", "IN_DOMAIN", "Domain"),
    ("User", "ACTIVE_IN", "Domain"),
    ("Intent", "NEEDS", "Category"),
    ("Category", "SERVES", "Intent"),
    ("Intent", "CO_OCCURS_WITH", "Intent"),
    ("Intent", "PRECEDES", "Intent"),
)


@dataclass(frozen=True)
class PPRConfig:
    """Args: alpha: restart probability; tol, max_iter: power-iteration stop; degree_power: β;
    edge_types: the (head, rel, tail) types walked (both directions); store_kg: also walk a KG
    loaded into the store (SAME_AS and its declared relation types)."""

    alpha: float = 0.15
    tol: float = 1e-9
    max_iter: int = 200
    degree_power: float = 0.0
    edge_types: tuple[EdgeKey, ...] = PPR_EDGES
    store_kg: bool = True


def personalised_pagerank(
    adjacency: sp.csr_matrix, restart: np.ndarray, alpha: float, tol: float = 1e-9, max_iter: int = 200
) -> np.ndarray:
    """π for a symmetric adjacency and a restart distribution (see the module docstring)."""
    restart = restart / restart.sum()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    dangling = degree == 0
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=~dangling)
    pi = restart.copy()
    for _ in range(max_iter):
        walked = adjacency.T @ (pi * inv)  # P^T π with P = D^-1 A
        new = alpha * restart + (1 - alpha) * (walked + pi[dangling].sum() * restart)
        done = np.abs(new - pi).sum() < tol
        pi = new
        if done:
            break
    return pi


class PPRTargeter:
    """Personalised PageRank (see the module docstring)."""

    name = "ppr"
    config_type = PPRConfig

    def __init__(self) -> None:
        self.store: GraphStore | None = None
        self.view: GraphView | None = None
        self.config = PPRConfig()

    def fit(self, store: GraphStore, config: PPRConfig | None = None) -> PPRTargeter:
        """Read the graph once; scoring is then pure sparse algebra."""
        self.store, self.config = store, config or PPRConfig()
        kg = declared_kg_edges(store) if self.config.store_kg else []
        self.view = read_graph_view(store, list(dict.fromkeys([*self.config.edge_types, *kg])))
        return self

    def _ready(self) -> tuple[GraphStore, GraphView]:
        if self.store is None or self.view is None:
            raise AudienceError("the PPR targeter is not fitted; call fit(store, config) first")
        return self.store, self.view

    def _restart(self, campaign: str) -> np.ndarray:
        store, view = self._ready()
        info = load_campaign(store, campaign)
        restart = np.zeros(view.num_nodes)
        idx = view.index("Intent", info.intents)
        for i, w in zip(idx, info.weights, strict=True):
            if i >= 0:
                restart[i] += w
        if restart.sum() <= 0:
            raise AudienceError(
                f"campaign {campaign!r} targets no intent in the graph; nothing to start from"
            )
        return restart

    def stationary(self, campaign: str) -> np.ndarray:
        """π over every node of the graph view for ``campaign``."""
        _, view = self._ready()
        c = self.config
        return personalised_pagerank(view.adjacency, self._restart(campaign), c.alpha, c.tol, c.max_iter)

    def score(self, campaign: str) -> pd.DataFrame:
        _, view = self._ready()
        users = view.span("User")
        pi = self.stationary(campaign)[users]
        degree = np.asarray(view.adjacency[users].sum(axis=1)).ravel()
        scores = (
            pi / np.maximum(degree, 1e-12) ** self.config.degree_power if self.config.degree_power else pi
        )
        return score_frame(view.ids["User"], scores)

    def explain(self, user: str, campaign: str) -> list[GraphPath]:
        """A shortest path from each targeted intent to ``user``, with its random-walk probability."""
        _, view = self._ready()
        starts = np.flatnonzero(self._restart(campaign))
        target = int(view.index("User", [user])[0])
        if target < 0:
            raise AudienceError(f"unknown user {user!r}")
        _, pred = shortest_path(
            view.adjacency, directed=False, unweighted=True, indices=starts, return_predecessors=True
        )
        degree = np.asarray(view.adjacency.sum(axis=1)).ravel()
        paths = []
        for row, start in enumerate(starts):
            nodes = [target]
            while nodes[-1] != start and pred[row, nodes[-1]] >= 0:
                nodes.append(int(pred[row, nodes[-1]]))
            if nodes[-1] != start:
                continue
            nodes.reverse()
            prob = float(np.prod([view.adjacency[a, b] / degree[a] for a, b in itertools.pairwise(nodes)]))
            named = [view.node(n) for n in nodes]
            rels = tuple(view.relation_between(a, b) for a, b in itertools.pairwise(named))
            paths.append(GraphPath(tuple(x[1] for x in named), tuple(x[0] for x in named), rels, prob))
        return sorted(paths, key=lambda p: -p.weight)
