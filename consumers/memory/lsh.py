"""Recall by locality-sensitive hashing: TiM's bucketed memory, and the exact baseline.

"Think-in-Memory: Recalling and Post-thinking Enable LLMs with Long-Term Memory" (Liu et al.,
arXiv 2311.08719), memory storage by LSH: a thought's embedding ``x`` [d] is hashed by one fixed
random projection ``R`` [d, b/2] (Gaussian, seeded) to one of ``b`` buckets,

    F(x) = argmax([x R ; −x R])                                                        (H)

(the concatenation is [b]; ``x`` and ``−x`` land in opposite buckets ``i`` and ``i ± b/2``), and
recall is top-k by cosine among the thoughts of the query's bucket. Vectors are unit length, so
cosine = inner product. Shapes: ``vectors`` / ``queries`` [N, d] float32, ``bucket`` → [N] int64
(one table) or [T, N] (``tables`` T).

Switches beyond the paper's single bucket (``probes=1, tables=1``):

- ``probes > 1``: multi-probe (Lv et al., "Multi-Probe LSH", VLDB 2007): a query also scans the
  next-best buckets by its own ranking of ``[x R ; −x R]``, i.e. its 2nd, 3rd … largest entries;
- ``tables > 1``: the union of T independent tables (independent ``R``), classical LSH's
  amplification; each table keeps its own copy of the vectors (``nbytes`` grows T-fold).

The bucket count ``b`` is fixed with ``R``. Scanning cost per query is ~``probes · N / b`` vectors
(if buckets were balanced) while recall falls as ``b`` grows, so ``b`` should grow with the memory:
:func:`buckets_for` gives ``b ≈ √N`` (a power of two, 16 … 4,096), which keeps the hashing cost
``d · b/2`` and the scan of one bucket ~N/b of the same order; the default 256 suits a memory of
up to ~100k thoughts. ``bench/memory.py`` measures the trade-off against :class:`ExactIndex`.

Storage: each (table, bucket) is one contiguous growable block of vectors [capacity, d] with the
rows' integer keys; a search groups the batch's (query, bucket) pairs by bucket and scores every
group with one matmul. ``remove`` swaps the last row of the block into the removed row's place, so a
removed id's vector is really gone (the right to be forgotten relies on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from graph.errors import InputError

Hits = list[list[tuple[str, float]]]
CHUNK = 8192  # rows hashed at a time


class VectorIndex(Protocol):
    """What thought recall needs of an index: string ids, unit vectors, cosine top-k."""

    dim: int

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None: ...
    def remove(self, ids: Sequence[str]) -> int: ...
    def search(self, queries: np.ndarray, k: int) -> Hits: ...
    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


def buckets_for(n: int) -> int:
    """A bucket count for ``n`` thoughts: the power of two nearest √n, within 16 … 4,096."""
    return int(min(4096, max(16, 2 ** round(np.log2(max(n, 1)) / 2))))


def check_vectors(x: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """``x`` as a C-contiguous float32 [N, dim]; an InputError if its shape or values are wrong."""
    arr = np.ascontiguousarray(np.atleast_2d(np.asarray(x)), dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(
            f"{what} have shape {tuple(arr.shape)}, expected [N, {dim}]; embed with the same encoder"
        )
    if not np.isfinite(arr).all():
        raise InputError(f"{what} hold NaN or infinite values; drop or re-embed those rows")
    return arr


def _check_add(ids: Sequence[str], vectors: np.ndarray, dim: int) -> np.ndarray:
    x = check_vectors(vectors, dim)
    if len(ids) != len(x):
        raise InputError(f"{len(ids)} ids but {len(x)} vectors; give one id per vector")
    if len(set(ids)) != len(ids):
        raise InputError("an id appears twice in one add; add each thought once per call")
    norms = np.linalg.norm(x, axis=1)
    if len(x) and np.abs(norms - 1).max() > 1e-3:
        raise InputError("vectors must be unit length (cosine = inner product); normalise them first")
    return x


def _new_keys(index: Any, ids: Sequence[str]) -> np.ndarray:
    """Fresh integer keys for ``ids`` in ``index`` (``_ids``, ``_key``), re-added ids removed first."""
    index.remove([i for i in ids if i in index._key])
    keys = np.arange(len(index._ids), len(index._ids) + len(ids), dtype=np.int64)
    index._ids.extend(ids)
    index._key.update(zip(ids, keys.tolist(), strict=True))
    return keys


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k is {k}; ask for at least 1 neighbour")


class _Block:
    """One bucket's rows: vectors [capacity, d] and their keys [capacity], the first ``n`` used."""

    def __init__(self, dim: int) -> None:
        self.vecs = np.empty((0, dim), np.float32)
        self.keys = np.empty(0, np.int64)
        self.n = 0

    def append(self, keys: np.ndarray, vecs: np.ndarray) -> int:
        """Append rows; returns the first new row's offset."""
        need = self.n + len(keys)
        if need > len(self.keys):
            cap = max(need, 2 * len(self.keys), 8)
            self.vecs = np.concatenate(
                [self.vecs[: self.n], np.empty((cap - self.n, self.vecs.shape[1]), np.float32)]
            )
            self.keys = np.concatenate([self.keys[: self.n], np.empty(cap - self.n, np.int64)])
        start = self.n
        self.vecs[start:need], self.keys[start:need], self.n = vecs, keys, need
        return start

    def pop(self, row: int) -> int:
        """Remove ``row`` by moving the last row into it; returns the moved row's key (-1: none)."""
        last = self.n - 1
        moved = -1
        if row != last:
            self.vecs[row], self.keys[row] = self.vecs[last], self.keys[last]
            moved = int(self.keys[row])
        self.vecs[last] = 0.0  # the forgotten vector is overwritten, not just unreferenced
        self.n = last
        return moved


class LSHIndex:
    """TiM's LSH memory index (module doc: (H), multi-probe, several tables).

    Args:
        dim: vector dimension d.
        buckets: b (even, ≥ 2); ``R`` is [d, b/2] per table.
        seed: seeds the Gaussian ``R`` (table t uses ``seed + t``).
        probes: buckets scanned per query and table (1: the paper); ``search`` may override it.
        tables: independent hash tables, unioned (an extension, not in the paper).
    """

    def __init__(self, dim: int, buckets: int = 256, seed: int = 0, probes: int = 1, tables: int = 1) -> None:
        if dim < 1 or buckets < 2 or buckets % 2 or not 1 <= probes <= buckets or tables < 1:
            raise InputError(
                f"LSH needs dim >= 1, an even bucket count >= 2, 1 <= probes <= buckets and tables >= 1 "
                f"(got dim={dim}, buckets={buckets}, probes={probes}, tables={tables})"
            )
        self.dim, self.buckets, self.seed, self.probes, self.tables = dim, buckets, seed, probes, tables
        self.R = np.stack(
            [
                np.random.default_rng(seed + t).standard_normal((dim, buckets // 2)).astype(np.float32)
                for t in range(tables)
            ]
        )
        self.blocks = [[_Block(dim) for _ in range(buckets)] for _ in range(tables)]
        self._key: dict[str, int] = {}  # id -> key
        self._ids: list[str] = []  # key -> id (keys are never reused)
        self._where = np.full((tables, 0), -1, np.int64)  # [T, ≥ keys]: bucket * 2^32 + row; -1: none

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``[x R ; −x R]`` per table: [T, N, b]."""
        x = check_vectors(x, self.dim)
        proj = np.stack([x @ r for r in self.R])  # one BLAS matmul per table
        return np.concatenate([proj, -proj], axis=2)

    def bucket(self, x: np.ndarray) -> np.ndarray:
        """(H): [N] int64 bucket ids (one table) or [T, N] (several)."""
        x = check_vectors(x, self.dim)
        b, half = np.empty((self.tables, len(x)), np.int64), self.buckets // 2
        for lo in range(0, len(x), CHUNK):  # [chunk, b/2] at a time: bounded memory
            for t, r in enumerate(self.R):
                proj = x[lo : lo + CHUNK] @ r
                top, bottom = proj.argmax(axis=1), proj.argmin(axis=1)
                rows = np.arange(len(proj))
                # argmax over [xR; -xR]: the largest xR entry, or the most negative one's mirror
                b[t, lo : lo + CHUNK] = np.where(proj[rows, top] >= -proj[rows, bottom], top, bottom + half)
        return b[0] if self.tables == 1 else b

    def probe(self, x: np.ndarray, probes: int | None = None) -> np.ndarray:
        """The ``probes`` best buckets per table and query, best first: [T, N, probes]."""
        p = min(self.buckets, probes or self.probes)
        s = self.scores(x)
        top = np.argpartition(-s, p - 1, axis=2)[:, :, :p] if p < self.buckets else np.argsort(-s, axis=2)
        order = np.argsort(-np.take_along_axis(s, top, axis=2), axis=2, kind="stable")
        return np.take_along_axis(top, order, axis=2).astype(np.int64)

    def __len__(self) -> int:
        return len(self._key)

    @property
    def nbytes(self) -> int:
        """Bytes of the numpy arrays (blocks at capacity, R, the key map; not the id strings)."""
        blocks = sum(b.vecs.nbytes + b.keys.nbytes for table in self.blocks for b in table)
        return int(blocks + self.R.nbytes + self._where.nbytes)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Index ``vectors`` [N, d] (unit length) under ``ids``; an id already there is replaced."""
        x = _check_add(ids, vectors, self.dim)
        keys = _new_keys(self, ids)
        if len(self._ids) > self._where.shape[1]:  # grown by doubling: many small adds stay cheap
            grown = np.full((self.tables, max(len(self._ids), 2 * self._where.shape[1])), -1, np.int64)
            grown[:, : self._where.shape[1]] = self._where
            self._where = grown
        hashed = self.bucket(x).reshape(self.tables, len(x))
        for t in range(self.tables):
            order = np.argsort(hashed[t], kind="stable")
            cut = np.flatnonzero(np.diff(hashed[t][order])) + 1
            for rows in np.split(order, cut) if len(order) else []:
                b = int(hashed[t][rows[0]])
                start = self.blocks[t][b].append(keys[rows], x[rows])
                self._where[t, keys[rows]] = (b << 32) + start + np.arange(len(rows))

    def remove(self, ids: Sequence[str]) -> int:
        """Drop ``ids`` (unknown ones are ignored); returns how many were removed."""
        removed = 0
        for i in dict.fromkeys(ids):
            key = self._key.pop(i, None)
            if key is None:
                continue
            for t in range(self.tables):
                b, row = divmod(int(self._where[t, key]), 1 << 32)
                moved = self.blocks[t][b].pop(row)
                if moved >= 0:
                    self._where[t, moved] = (b << 32) + row
                self._where[t, key] = -1
            self._ids[key] = ""  # nothing of a forgotten thought is kept
            removed += 1
        return removed

    def scanned(self, queries: np.ndarray, probes: int | None = None) -> np.ndarray:
        """Vectors each query's search scores (with duplicates across tables): [Q] int64."""
        probed = self.probe(queries, probes)
        sizes = np.array([[b.n for b in table] for table in self.blocks], np.int64)  # [T, b]
        per_query: np.ndarray = np.take_along_axis(sizes[:, None, :], probed, axis=2).sum(axis=(0, 2))
        return per_query

    def search(self, queries: np.ndarray, k: int, probes: int | None = None) -> Hits:
        """Per query [Q, d], its top ``k`` (id, cosine) in its probed buckets, best first."""
        _check_k(k)
        q = check_vectors(queries, self.dim, "queries")
        probed = self.probe(q, probes)  # [T, Q, p]
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for t in range(self.tables):
            qs = np.repeat(np.arange(len(q)), probed.shape[2])
            bs = probed[t].ravel()
            order = np.argsort(bs, kind="stable")
            cut = np.flatnonzero(np.diff(bs[order])) + 1
            for group in np.split(order, cut) if len(order) else []:
                block = self.blocks[t][int(bs[group[0]])]
                if block.n:
                    found.append(_top(q[qs[group]] @ block.vecs[: block.n].T, qs[group], block.keys, k))
        return self._merge(found, len(q), k)

    def _merge(self, found: list[tuple[np.ndarray, np.ndarray, np.ndarray]], nq: int, k: int) -> Hits:
        out: Hits = [[] for _ in range(nq)]
        if not found:
            return out
        qs, keys, s = (np.concatenate(part) for part in zip(*found, strict=True))
        if self.tables > 1:  # one row may be found by several tables
            _, first = np.unique(qs * (len(self._ids) + 1) + keys, return_index=True)
            qs, keys, s = qs[first], keys[first], s[first]
        order = np.lexsort((-s, qs))
        qs, keys, s = qs[order], keys[order], s[order]
        rank = np.arange(len(qs)) - np.searchsorted(qs, qs)
        keep = rank < k
        for qi, key, score in zip(qs[keep].tolist(), keys[keep].tolist(), s[keep].tolist(), strict=True):
            out[qi].append((self._ids[key], score))
        return out


def _top(
    scores: np.ndarray, qs: np.ndarray, keys: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores`` [G, n] as (query, key, score) triples."""
    kk = min(k, scores.shape[1])
    top = (
        np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        if kk < scores.shape[1]
        else np.indices(scores.shape)[1]
    )
    return np.repeat(qs, kk), keys[top].ravel(), np.take_along_axis(scores, top, axis=1).ravel()


class ExactIndex:
    """The exact baseline: faiss ``IndexFlatIP`` in an ``IndexIDMap2`` (string ids ↔ int64 keys),
    ``remove`` by ``remove_ids`` (the rows are dropped from the flat array)."""

    def __init__(self, dim: int) -> None:
        from consumers.retrieval.index import faiss

        if dim < 1:
            raise InputError(f"dim is {dim}; give the embedding dimension (>= 1)")
        self.dim = dim
        self.index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._key: dict[str, int] = {}
        self._ids: list[str] = []

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def nbytes(self) -> int:
        """Bytes of the flat vectors and the int64 id map (faiss's reverse hash map not counted)."""
        return int(self.index.ntotal) * (4 * self.dim + 8)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """As :meth:`LSHIndex.add`."""
        x = _check_add(ids, vectors, self.dim)
        keys = _new_keys(self, ids)
        self.index.add_with_ids(x, keys)

    def remove(self, ids: Sequence[str]) -> int:
        """As :meth:`LSHIndex.remove`."""
        keys = [k for k in (self._key.pop(i, None) for i in dict.fromkeys(ids)) if k is not None]
        for k in keys:
            self._ids[k] = ""
        if keys:
            self.index.remove_ids(np.asarray(keys, np.int64))
        return len(keys)

    def search(self, queries: np.ndarray, k: int) -> Hits:
        """Per query [Q, d], its exact top ``k`` (id, cosine), best first."""
        _check_k(k)
        q = check_vectors(queries, self.dim, "queries")
        scores, keys = self.index.search(q, min(k, max(1, len(self))))
        return [
            [(self._ids[j], float(v)) for j, v in zip(row, sc, strict=True) if j >= 0]
            for row, sc in zip(keys.tolist(), scores.tolist(), strict=True)
        ]
