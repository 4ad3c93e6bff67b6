"""BM25 over the items' text (title, category path, brand), with ``bm25s``.

English stop words removed, no stemming, bm25s's default parameters (Lucene BM25, k1=1.5, b=0.75).
Items with a zero score (no query term in common) are left out of a query's results.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s  # type: ignore[import-untyped]
import numpy as np


class BM25:
    """A BM25 index over ``texts``, ids ``ids``."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.ids = [str(i) for i in ids]
        self._model = bm25s.BM25()
        tokens = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
        self._model.index(tokens, show_progress=False)

    def search(self, texts: Sequence[str], k: int) -> dict[int, dict[str, float]]:
        """query position → {item id: score} of its top ``k`` (score > 0) items."""
        k = min(k, len(self.ids))
        queries = bm25s.tokenize(list(texts), stopwords="en", show_progress=False, return_ids=False)
        queries = [q if q else [""] for q in queries]
        docs, scores = self._model.retrieve(queries, k=k, show_progress=False, n_threads=1)
        out: dict[int, dict[str, float]] = {}
        for row, (d, s) in enumerate(zip(np.asarray(docs), np.asarray(scores), strict=True)):
            out[row] = {self.ids[int(j)]: float(v) for j, v in zip(d, s, strict=True) if v > 0}
        return out


def bm25_run(
    ids: Sequence[str], texts: Sequence[str], query_ids: Sequence[str], query_texts: Sequence[str], k: int
) -> dict[str, dict[str, float]]:
    """{query id: {item id: score}}: BM25's top ``k`` items per query."""
    found = BM25(ids, texts).search(query_texts, k)
    return {str(q): found[n] for n, q in enumerate(query_ids)}
