"""MiniLM embeddings for the mining stages, memoised in memory over the on-disk per-text cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loaders.features import TextEncoder, cached_embeddings, make_encoder


class Embedder:
    """Unit-norm text vectors; each distinct text is encoded once per process (and cached on disk)."""

    def __init__(self, encoder: TextEncoder | None = None, cache_dir: Path | None = None) -> None:
        self.encoder = encoder or make_encoder("minilm")
        self.cache_dir = cache_dir
        self._memo: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self._memo})
        if todo:
            vectors = cached_embeddings(todo, self.encoder, self.cache_dir)
            self._memo.update(zip(todo, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine of ``left[i]`` and ``right[i]``."""
        a, b = self(left), self(right)
        return np.asarray((a * b).sum(axis=1), dtype=np.float64)
