"""The plain bi-encoder, zero-shot: the shipped MiniLM (``loaders.features``), cosine similarity.

Item text (title, category path, brand) and query text are embedded by the same frozen encoder,
cached on disk per text (:func:`loaders.features.cached_embeddings`), and L2-normalised, so the inner
product of the faiss index is the cosine. No training: this is the zero-shot row of the table and
the encoder ``mokg train retrieval`` indexes with until MURAL replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loaders.features import TextEncoder, cached_embeddings


def embed(texts: Sequence[str], encoder: TextEncoder, cache_dir: Path | None = None) -> np.ndarray:
    """[N, dim] float32, unit length (an empty text stays the zero vector)."""
    vectors = cached_embeddings(list(texts), encoder, cache_dir)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: np.ndarray = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return out


def dense_run(
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    query_ids: Sequence[str],
    query_vectors: np.ndarray,
    k: int,
) -> dict[str, dict[str, float]]:
    """{query id: {item id: cosine}} of the exact top ``k`` (faiss ``IndexFlatIP``)."""
    from consumers.retrieval.index import build_faiss

    index = build_faiss(item_vectors, "flat")
    scores, rows = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(k, len(item_ids)))
    return {
        str(q): {str(item_ids[j]): float(s) for j, s in zip(rows[n], scores[n], strict=True) if j >= 0}
        for n, q in enumerate(query_ids)
    }
