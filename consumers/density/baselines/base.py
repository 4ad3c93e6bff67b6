"""The contract every density baseline of issue 19 meets (:class:`DensityBaseline`).

``fit(train, valid, seed)`` learns from float arrays ``[rows, dim]`` (the standardised splits of
:func:`consumers.density.data.load_dataset`) and returns the baseline; ``log_prob(x)`` gives the
log-density of each row in the same standardised space (``None`` for a baseline without a
tractable likelihood); ``sample(n, seed)`` draws ``[n, dim]``; ``fit_seconds`` is the wall time of
the last ``fit``. Each baseline takes one frozen config dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from torch import Tensor

Array = NDArray[np.float64]
T = TypeVar("T")


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


def float_tensors(*arrays: object) -> tuple[Tensor, ...]:
    """Each array as a float32 ``[rows, dim]`` tensor (:func:`as_rows` first)."""
    import torch

    return tuple(torch.as_tensor(as_rows(a), dtype=torch.float32) for a in arrays)


def seeded_build(seed: int, build: Callable[[], T]) -> T:
    """``build()`` with torch's global generator at ``seed``, restored afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
