"""User-sampled training graphs and sparse adjacencies: what lets the audience GNN scale to 1M users.

A training step of :mod:`gnn.audience.gnn` samples ``B`` users and keeps **every** other node
(items, categories, queries, intents, domains, campaigns: at most a few hundred thousand) but only
the sampled users' edges, as in GraphSAINT's node sampler (Zeng et al. 2020, "GraphSAINT:
Graph Sampling Based Inductive Learning Method") restricted to one node type. The users' rows are
renumbered ``0..B-1`` in the sampled order; the weak-label pairs of those users are the step's
positives. When ``B`` covers every user the step graph is the whole graph (plain full-batch
training).

Training steps pass messages along ``edge_index`` tensors (PyG's gather/scatter: its backward is
several times faster than that of a sparse product). Inference over the full graph (10M
interactions) runs on sparse CSR adjacencies (``adj_t[dst, src] = 1``, mean-aggregated by
``torch.sparse.mm``): no per-edge message tensor is built, so it needs memory only for the node
states.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from graph.subgraph import EdgeKey

if TYPE_CHECKING:
    import torch

USER = "User"


def adjacency(edge_index: Any, n_src: int, n_dst: int) -> torch.Tensor:
    """``adj_t`` (``n_dst x n_src``, CSR, ones) of a ``2 x E`` (src, dst) edge index."""
    import torch

    src, dst = np.asarray(edge_index[0]), np.asarray(edge_index[1])
    order = np.argsort(dst, kind="stable")
    crow = np.zeros(n_dst + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n_dst), out=crow[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow),
            torch.from_numpy(src[order].astype(np.int64)),
            torch.ones(len(src)),
            size=(n_dst, n_src),
        )


def adjacencies(edge_index: dict[EdgeKey, Any], sizes: dict[str, int]) -> dict[EdgeKey, torch.Tensor]:
    """:func:`adjacency` of every edge type, with the node counts of ``sizes``."""
    return {et: adjacency(ei, sizes[et[0]], sizes[et[2]]) for et, ei in edge_index.items()}


def _ranges(ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the items of groups ``rows`` of a CSR ``ptr``, and the group's rank in ``rows``."""
    counts = ptr[rows + 1] - ptr[rows]
    rank = np.repeat(np.arange(len(rows)), counts)
    offset = np.repeat(ptr[rows] - np.cumsum(counts) + counts, counts)
    return offset + np.arange(int(counts.sum())), rank


class UserGrouped:
    """Rows of an array grouped by a user index column (CSR), for fast per-batch gathering."""

    def __init__(self, user: np.ndarray, n_users: int) -> None:
        self.order = np.argsort(user, kind="stable")
        self.ptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=n_users), out=self.ptr[1:])

    def take(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Original row numbers of ``users``' rows and each row's user rank in ``users``."""
        pos, rank = _ranges(self.ptr, users)
        return self.order[pos], rank


class UserSampler:
    """The full graph's edges grouped by user, cut down to a batch of users on demand."""

    def __init__(self, edge_index: dict[EdgeKey, Any], sizes: dict[str, int]) -> None:
        self.edge_index = {et: np.asarray(ei) for et, ei in edge_index.items()}
        self.sizes = sizes
        self.grouped = {
            et: UserGrouped(ei[0 if et[0] == USER else 1], sizes[USER])
            for et, ei in self.edge_index.items()
            if USER in (et[0], et[2])
        }

    def full(self) -> dict[EdgeKey, torch.Tensor]:
        """Sparse adjacencies of the whole graph (inference)."""
        return adjacencies(self.edge_index, self.sizes)

    def batch(self, users: np.ndarray | None) -> dict[EdgeKey, torch.Tensor]:
        """Edge indices with only ``users``' edges, users renumbered ``0..len(users)-1``; every
        edge for ``None`` (full-batch training)."""
        import torch

        out = {et: torch.from_numpy(ei) for et, ei in self.edge_index.items()}
        if users is None:
            return out
        for et, group in self.grouped.items():
            rows, rank = group.take(users)
            ei = self.edge_index[et][:, rows]
            ei[0 if et[0] == USER else 1] = rank
            out[et] = torch.from_numpy(ei)
        return out
