"""Kernel density estimation (Rosenblatt 1956; Parzen 1962) with a cross-validated bandwidth.

    p̂(x) = (1/N) Σ_i K_h(x − x_i),   K_h Gaussian: N(0, h² I)  (or a top-hat of radius h)

scikit-learn's ``KernelDensity`` on the train split; ``h`` is chosen from ``bandwidths`` by
``GridSearchCV`` (k-fold held-out log-likelihood) on at most ``max_search_rows`` train rows, then
the model is refit on the whole train split. The valid split is not used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from consumers.density.baselines.base import Array, as_rows
from graph.errors import InputError


@dataclass(frozen=True)
class KDEConfig:
    """bandwidths: the grid for ``h`` (standardised units); kernel: ``gaussian`` or ``tophat``
    (those scikit-learn can sample); folds: cross-validation folds; max_search_rows: train rows
    the grid search sees."""

    bandwidths: tuple[float, ...] = (0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.8, 1.2)
    kernel: str = "gaussian"
    folds: int = 5
    max_search_rows: int = 2000

    def __post_init__(self) -> None:
        if self.kernel not in ("gaussian", "tophat"):
            raise InputError(f"KDE kernel must be gaussian or tophat (samplable), got {self.kernel!r}")


class KDE:
    """Kernel density estimate with a bandwidth chosen by cross-validation on the train split."""

    name = "kde"

    def __init__(self, config: KDEConfig | None = None) -> None:
        self.config = config or KDEConfig()
        self.bandwidth = float("nan")
        self.fit_seconds = 0.0
        self._kde: Any = None

    def fit(self, train: Array, valid: Array, seed: int = 0) -> Self:
        from sklearn.model_selection import GridSearchCV, KFold
        from sklearn.neighbors import KernelDensity

        start = time.perf_counter()
        x = as_rows(train)
        rng = np.random.default_rng(seed)
        search_rows = (
            x
            if len(x) <= self.config.max_search_rows
            else x[rng.choice(len(x), self.config.max_search_rows, replace=False)]
        )
        cv = KFold(self.config.folds, shuffle=True, random_state=seed)
        grid = GridSearchCV(
            KernelDensity(kernel=self.config.kernel), {"bandwidth": list(self.config.bandwidths)}, cv=cv
        )
        grid.fit(search_rows)
        self.bandwidth = float(grid.best_params_["bandwidth"])
        self._kde = KernelDensity(kernel=self.config.kernel, bandwidth=self.bandwidth).fit(x)
        self.fit_seconds = time.perf_counter() - start
        return self

    def log_prob(self, x: Array) -> Array:
        return np.asarray(self._fitted().score_samples(as_rows(x)), dtype=np.float64)

    def sample(self, n: int, seed: int = 0) -> Array:
        return np.asarray(self._fitted().sample(n, random_state=seed), dtype=np.float64)

    def _fitted(self) -> Any:
        if self._kde is None:
            raise InputError("call fit(train, valid) before log_prob or sample")
        return self._kde
