"""Test doubles shared by the test modules."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class FakeEncoder:
    """Deterministic 8-d text vectors from a hash of the text (no model load); a ``TextEncoder``."""

    model_id = "fake-8"
    dim = 8
    offset = 0.0  # subtracted from every coordinate (in [0, 1] before)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim) / 255.0 - self.offset


class CenteredFakeEncoder(FakeEncoder):
    """:class:`FakeEncoder` with coordinates in [-0.5, 0.5] (cosine similarities of both signs)."""

    offset = 0.5
