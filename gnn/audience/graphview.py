"""The store's heterogeneous graph as one sparse, symmetric, weighted adjacency matrix.

Every node of the selected labels gets a global index (labels in a fixed order, ids sorted within a
label); every edge ``(h, r, t)`` of the selected types adds its confidence to ``A[h, t]`` and
``A[t, h]``. Propagation methods (personalised PageRank) run on this matrix; ``relation_between``
names the relation of an edge again when a path is explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gnn.audience.base import positions
from graph.store import GraphStore
from graph.subgraph import EdgeKey


@dataclass
class GraphView:
    labels: list[str]
    ids: dict[str, list[str]]
    offsets: dict[str, int]
    adjacency: sp.csr_matrix
    edges: dict[EdgeKey, pd.DataFrame] = field(repr=False)

    @property
    def num_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    def index(self, label: str, node_ids: Sequence[str]) -> np.ndarray:
        """Global indices of ``node_ids`` of ``label`` (-1 for ids not in the graph)."""
        local = positions(self.ids.get(label, []), list(node_ids))
        return np.where(local >= 0, local + self.offsets.get(label, 0), -1)

    def node(self, index: int) -> tuple[str, str]:
        """(label, id) of a global index."""
        for label in reversed(self.labels):
            if index >= self.offsets[label]:
                return label, self.ids[label][index - self.offsets[label]]
        raise IndexError(index)

    def span(self, label: str) -> slice:
        start = self.offsets[label]
        return slice(start, start + len(self.ids[label]))

    def relation_between(self, a: tuple[str, str], b: tuple[str, str]) -> str:
        """The relation type of an edge between two (label, id) nodes, in either direction."""
        for (h, r, t), df in self.edges.items():
            for x, y in ((a, b), (b, a)):
                if (h, t) == (x[0], y[0]) and ((df["head"] == x[1]) & (df["tail"] == y[1])).any():
                    return r
        return "?"


def read_graph_view(store: GraphStore, edge_keys: Sequence[EdgeKey]) -> GraphView:
    """Read the node ids and edge tables of ``edge_keys`` from the store into a :class:`GraphView`."""
    labels = list(dict.fromkeys(x for h, _r, t in edge_keys for x in (h, t)))
    ids = {label: sorted(store.node_table(label)["id"].astype(str).tolist()) for label in labels}
    offsets, total = {}, 0
    for label in labels:
        offsets[label], total = total, total + len(ids[label])
    edges: dict[EdgeKey, pd.DataFrame] = {}
    rows, cols, vals = [], [], []
    for key in edge_keys:
        df = store.edge_table(key, ["confidence"])
        edges[key] = df[["head", "tail"]].astype(str)
        if not len(df):
            continue
        h = positions(ids[key[0]], df["head"].astype(str)) + offsets[key[0]]
        t = positions(ids[key[2]], df["tail"].astype(str)) + offsets[key[2]]
        w = df["confidence"].fillna(1.0).to_numpy(float)
        rows += [h, t]
        cols += [t, h]
        vals += [w, w]
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    v = np.concatenate(vals) if vals else np.zeros(0)
    adjacency = sp.csr_matrix((v, (r, c)), shape=(total, total))
    return GraphView(labels, ids, offsets, adjacency, edges)
