"""The contract every density baseline of issue 19 meets (:class:`DensityBaseline`).

``fit(train, valid, seed)`` learns from float arrays ``[rows, dim]`` (the standardised splits of
:func:`consumers.density.data.load_dataset`) and returns the baseline; ``log_prob(x)`` gives the
log-density of each row in the same standardised space (``None`` for a baseline without a
tractable likelihood); ``sample(n, seed)`` draws ``[n, dim]``; ``fit_seconds`` is the wall time of
the last ``fit``. Each baseline takes one frozen config dataclass.
"""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


class DensityBaseline(Protocol):
    """A density model fit on the train split and compared with the training-free diffusion model."""

    name: str
    fit_seconds: float

    def fit(self, train: Array, valid: Array, seed: int = 0) -> Self: ...

    def log_prob(self, x: Array) -> Array | None: ...

    def sample(self, n: int, seed: int = 0) -> Array: ...


def as_rows(x: object) -> Array:
    """``x`` as float64 ``[rows, dim]``."""
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(len(a), -1)
