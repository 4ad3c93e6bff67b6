"""An inverted-file (IVF) index for PEACE's E7 at serving time, in numpy (Jégou et al., "Product
quantization for nearest neighbor search", TPAMI 2011, §IV: the coarse quantiser without the
product codes; Faiss's ``IndexIVFFlat``).

Offline (:func:`build_ivf`): spherical k-means puts the L2-normalised item vectors into ``C ≈ √n``
lists (a list longer than twice the mean is cut into chunks that share its centroid, which bounds
the work of one probe when many items have the same vector); the items are stored list by list.
Online (:func:`ivf_top_k`), for users with normalised interests ``ẑ_{u,1..K}``:

    probe(u, k) = the ``nprobe`` lists whose centroid ``c`` maximises ``ẑ_{u,k} · c``
    cand(u)     = ⋃_k top-``k'`` of { ẑ_{u,k} · v̂_i : i in the lists probe(u, k) }
    top-k(u)    = top-``k`` of { max_k ẑ_{u,k} · v̂_i : i ∈ cand(u), i unseen by u }        (E7)

with ``k' = k + (most seen items of a user in the batch)``. The top-``k`` of a max over interests
lies in the union of each interest's own top-``k`` (an item whose max is attained at interest
``k*`` and that is not in ``k*``'s top-``k`` is beaten by ``k`` items under the max too), so with
``nprobe = C`` the result is exact E7; a smaller ``nprobe`` scores ``≈ nprobe / C`` of the items
per interest and may miss some (the benchmark reports recall@k against exact scoring).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class IVFConfig:
    """Build and query settings of the index.

    Args:
        min_items: domains with more items get an index at export (smaller ones are scored exactly).
        lists: ``C`` (None = ``round(√n)``); iters: k-means iterations; sample: points k-means fits on
        (every item is then assigned to its nearest centroid); seed: k-means initialisation.
        nprobe: lists probed per interest at query time (the default of ``ivf_top_k``).
    """

    min_items: int = 5_000
    max_list: float = 2.0
    lists: int | None = None
    iters: int = 10
    sample: int = 65_536
    seed: int = 0
    nprobe: int = 8


def build_ivf(items: np.ndarray, config: IVFConfig = IVFConfig()) -> dict[str, np.ndarray]:
    """The index of L2-normalised ``items`` ``[n, d]``: ``ivf_centroids`` ``[C, d]``, ``ivf_ptr``
    ``[C + 1]`` and ``ivf_order`` (item columns list by list; list ``c`` is
    ``ivf_order[ivf_ptr[c]:ivf_ptr[c + 1]]``). :func:`with_list_items` adds the items in that order."""
    n = len(items)
    c = min(n, config.lists or max(1, round(np.sqrt(n))))
    rng = np.random.default_rng(config.seed)
    fit = items[rng.choice(n, size=min(n, config.sample), replace=False)]
    centres = fit[rng.choice(len(fit), size=c, replace=False)].copy()
    for _ in range(config.iters):
        assign = _nearest(fit, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, fit)
        empty = np.bincount(assign, minlength=c) == 0
        sums[empty] = fit[rng.choice(len(fit), size=int(empty.sum()), replace=False)]
        centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    assign = _nearest(items, centres)
    order = np.argsort(assign, kind="stable")
    sizes = np.bincount(assign, minlength=c)
    # a list longer than ``max_list`` is cut into chunks that share its centroid, so one probe
    # never scores more than ``max_list`` items (duplicate item vectors make lists very uneven)
    cap = max(1, int(np.ceil(config.max_list * n / c)))
    chunks = np.maximum(1, -(-sizes // cap))
    owner = np.repeat(np.arange(c), chunks)
    first = np.repeat(np.cumsum(chunks) - chunks, chunks)
    lo = np.repeat(np.cumsum(sizes) - sizes, chunks) + (np.arange(len(owner)) - first) * cap
    ptr = np.append(lo, n)
    return {
        "ivf_centroids": centres[owner].astype(np.float32),
        "ivf_ptr": ptr.astype(np.int64),
        "ivf_order": order.astype(np.int64),
    }


def with_list_items(index: dict[str, np.ndarray], items: np.ndarray) -> dict[str, np.ndarray]:
    """``index`` plus ``ivf_items``, the items list by list (derived at load, not saved)."""
    return index | {"ivf_items": np.ascontiguousarray(items[index["ivf_order"]], dtype=np.float32)}


def _nearest(x: np.ndarray, centres: np.ndarray, chunk: int = 16_384) -> np.ndarray:
    """Index of the most similar centre (dot product) of every row of ``x``, in chunks."""
    return np.concatenate(
        [np.argmax(x[s : s + chunk] @ centres.T, axis=1) for s in range(0, len(x), chunk)]
        or [np.zeros(0, dtype=np.int64)]
    )


def ivf_top_k(
    index: dict[str, np.ndarray],
    items: np.ndarray,
    zn: np.ndarray,
    k: int,
    nprobe: int,
    seen: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item columns and E7 scores (best first) of users with normalised interests ``zn``
    ``[B, K, d]``; ``items`` are the domain's normalised vectors, ``seen[b]`` user ``b``'s columns
    to leave out. Rows with fewer than ``k`` candidates are padded with column ``-1``, score ``-inf``."""
    counts = np.array([len(s) for s in seen]) if seen is not None else np.zeros(len(zn), dtype=np.int64)
    # Each user's probe keeps k + (seen items) per interest and list, so that dropping the seen
    # still leaves k. One heavy user would inflate that for the whole batch, so the users with the
    # most seen items (above the 90th percentile) are probed as a group of their own.
    cap = int(np.percentile(counts, 90)) if len(counts) else 0
    heavy = counts > cap
    if heavy.any() and (~heavy).any():
        cols = np.empty((len(zn), k), dtype=np.int64)
        scores = np.empty((len(zn), k), dtype=np.float32)
        for part in (np.flatnonzero(~heavy), np.flatnonzero(heavy)):
            sub = [seen[i] for i in part] if seen is not None else None
            cols[part], scores[part] = _ivf_group(index, items, zn[part], k, nprobe, sub)
        return cols, scores
    return _ivf_group(index, items, zn, k, nprobe, seen)


def _ivf_group(
    index: dict[str, np.ndarray],
    items: np.ndarray,
    zn: np.ndarray,
    k: int,
    nprobe: int,
    seen: list[np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    b, n_int, d = zn.shape
    q = zn.reshape(b * n_int, d)
    extra = max((len(s) for s in seen), default=0) if seen is not None else 0
    with one_blas_thread():  # hundreds of small products: BLAS threads only add overhead
        cand, _ = _probe_lists(index, q, k + extra, nprobe)  # [B·K, k']
    cand = cand.reshape(b, -1)
    return _merge(items, zn, cand, k, seen)


@cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit numpy's BLAS to one thread inside the block (a no-op without threadpoolctl)."""
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def _probe_lists(
    index: dict[str, np.ndarray], q: np.ndarray, kk: int, nprobe: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best ``kk`` item columns (``-1`` pads) and scores among its ``nprobe`` lists."""
    centroids, ptr, order, vecs = (index[f"ivf_{k}"] for k in ("centroids", "ptr", "order", "items"))
    n_lists = len(centroids)
    nprobe = min(nprobe, n_lists)
    cs = q @ centroids.T
    probe = cs.argpartition(n_lists - nprobe, axis=1)[:, n_lists - nprobe :]  # [N, nprobe]
    best = np.full((len(q), nprobe, kk), -np.inf, dtype=np.float32)
    cols = np.full((len(q), nprobe, kk), -1, dtype=np.int64)
    flat = probe.ravel()
    by_list = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[by_list], np.arange(n_lists + 1))
    for c in np.flatnonzero(np.diff(bounds)):
        hits = by_list[bounds[c] : bounds[c + 1]]
        qi, slot = hits // nprobe, hits % nprobe
        lo, hi = ptr[c], ptr[c + 1]
        s = q[qi] @ vecs[lo:hi].T  # [m, size of list c]
        if hi - lo > kk:
            top = s.argpartition(hi - lo - kk, axis=1)[:, hi - lo - kk :]
            s = np.take_along_axis(s, top, axis=1)
        else:
            top = np.broadcast_to(np.arange(hi - lo), s.shape)
        best[qi, slot, : s.shape[1]] = s
        cols[qi, slot, : s.shape[1]] = order[lo + top]
    flat_best, flat_cols = best.reshape(len(q), -1), cols.reshape(len(q), -1)
    width = flat_best.shape[1]
    if width > kk:
        top = flat_best.argpartition(width - kk, axis=1)[:, width - kk :]
        flat_best = np.take_along_axis(flat_best, top, axis=1)
        flat_cols = np.take_along_axis(flat_cols, top, axis=1)
    return flat_cols, flat_best


def _merge(
    items: np.ndarray, zn: np.ndarray, cand: np.ndarray, k: int, seen: list[np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """E7 exactly on each user's candidates; duplicates, padding and seen items dropped; top-``k``."""
    cand = np.sort(cand, axis=1)
    s = np.einsum("bkd,bnd->bkn", zn, items[np.maximum(cand, 0)]).max(axis=1)
    drop = cand < 0
    drop[:, 1:] |= cand[:, 1:] == cand[:, :-1]
    if seen is not None:
        for row, cols in enumerate(seen):
            if len(cols):
                drop[row] |= np.isin(cand[row], cols)
    s[drop] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    out_s = np.take_along_axis(s, idx, axis=1)
    out_c = np.take_along_axis(cand, idx, axis=1)
    out_c[~np.isfinite(out_s)] = -1
    return out_c, out_s
