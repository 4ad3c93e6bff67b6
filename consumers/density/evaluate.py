"""One row of issue 19's table: a method fit on one data set and seed, timed, sampled and scored.

:func:`evaluate` fits the method on the train split (the flows stop early on the valid split), times
the fit, draws ``sample_size`` samples (timed, reported per 10,000), and scores them against the
test split with :func:`consumers.density.metrics.sample_metrics` (MMD², energy distance, sliced
Wasserstein-1, classifier two-sample test, memorisation against the train split). Where the method
has a density, ``test_loglik`` is its mean log-likelihood over the first ``loglik_rows`` test rows
(standardised units; the same rows for every method).

Ours: ``diffusion`` samples with the MLP generator (D8) (``fit_s`` = labelling the pairs with the
ODE + training the MLP); ``diffusion-ode`` samples with the probability-flow ODE (D5) itself, which
needs no training (``fit_s`` = 0; its cost is in ``sample_s_10k``). The two share one fit per data
set and seed. ``diffusion-fast`` is ``diffusion`` with its pairs labelled by a cheaper solve of the
same ODE (:data:`~consumers.density.config.FAST_LABELLING`). The generator has no density;
``diffusion-ode``'s ``test_loglik`` is the ODE likelihood (D7), i.e. a Gaussian kernel density of
bandwidth ``√ε`` on the Monte Carlo batches of the train split (:mod:`consumers.density.likelihood`),
computed only up to ``loglik_max_dim`` dimensions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from consumers.density.config import EvalConfig

if TYPE_CHECKING:
    from consumers.density.data import DensityData
    from consumers.density.model import DiffusionDensity
    from graph.progress import StageProgress

Array = NDArray[np.float64]
OURS = ("diffusion", "diffusion-ode", "diffusion-fast")
PER = 10_000  # sampling time is reported per this many samples
SAMPLE_SEED = 10_000  # samples are drawn with seed + this: noise no model saw in training


@dataclass(frozen=True)
class Fitted:
    """A method fit on one split: how it samples (``n, seed → [n, d]``), its log-density (None when
    it has none, or it is skipped) and the fit's wall time."""

    sample: Callable[[int, int], Array]
    log_prob: Callable[[Array], Array] | None
    fit_seconds: float


@dataclass(frozen=True)
class Evaluated:
    """One table row (:data:`COLUMNS` and the metrics) and the samples it was scored on."""

    row: dict[str, Any]
    samples: Array


class OursCache:
    """The one fit of ours per (data set, seed) that ``diffusion`` and ``diffusion-ode`` share (and
    ``diffusion-fast``'s own, labelled with :data:`~consumers.density.config.FAST_LABELLING`)."""

    def __init__(self) -> None:
        self._fits: dict[tuple[str, int, bool], tuple[DiffusionDensity, float]] = {}

    def get(
        self,
        data: DensityData,
        config: EvalConfig,
        seed: int,
        progress: StageProgress | None,
        fast: bool = False,
    ) -> tuple[DiffusionDensity, float]:
        key = (data.name, seed, fast)
        if key not in self._fits:
            from consumers.density.config import FAST_LABELLING
            from consumers.density.model import fit

            settings = FAST_LABELLING if fast else {}
            start = time.perf_counter()
            model = fit(data.train, replace(config.density, seed=seed, **settings), progress)
            self._fits[key] = (model, time.perf_counter() - start)
        return self._fits[key]


def _numpy(x: Any) -> Array:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)


def fit_ours(
    method: str,
    data: DensityData,
    config: EvalConfig,
    seed: int,
    cache: OursCache,
    progress: StageProgress | None = None,
) -> Fitted:
    """``diffusion``/``diffusion-fast`` (MLP generator, no density) or ``diffusion-ode`` (ODE
    sampler, ODE likelihood)."""
    model, seconds = cache.get(data, config, seed, progress, fast=method == "diffusion-fast")
    if method != "diffusion-ode":
        return Fitted(lambda n, s: _numpy(model.sample(n, s)), None, seconds)
    log_prob = None
    if data.dim <= config.loglik_max_dim:
        log_prob = lambda x: _numpy(model.log_prob(x, progress))  # noqa: E731
    return Fitted(lambda n, s: _numpy(model.ode_sample(n, s, progress)), log_prob, 0.0)


def fit_baseline(method: str, data: DensityData, config: EvalConfig, seed: int) -> Fitted:
    """A baseline of :mod:`consumers.density.baselines` with its config from ``config``."""
    from consumers.density.baselines import make_baseline

    model = make_baseline(method, getattr(config, method)).fit(data.train, data.valid, seed)
    has_density = model.log_prob(data.test[:1]) is not None
    log_prob: Callable[[Array], Array] | None = None
    if has_density:
        log_prob = lambda x: np.asarray(model.log_prob(x), dtype=np.float64)  # noqa: E731
    return Fitted(model.sample, log_prob, model.fit_seconds)


def evaluate(
    method: str,
    data: DensityData,
    config: EvalConfig,
    seed: int,
    cache: OursCache | None = None,
    progress: StageProgress | None = None,
) -> Evaluated:
    """Fit ``method`` on ``data`` with ``seed``, sample, time and score it (module doc)."""
    from consumers.density.metrics import sample_metrics

    if method in OURS:
        fitted = fit_ours(method, data, config, seed, cache or OursCache(), progress)
    else:
        fitted = fit_baseline(method, data, config, seed)
    start = time.perf_counter()
    samples = fitted.sample(config.sample_size, seed + SAMPLE_SEED)
    sample_seconds = time.perf_counter() - start
    rows = data.test[: config.loglik_rows]
    loglik = float(np.mean(fitted.log_prob(rows))) if fitted.log_prob is not None else float("nan")
    row = {
        "seed": seed,
        "dataset": data.name,
        "method": method,
        "dim": data.dim,
        "n_train": len(data.train),
        "n_test": len(data.test),
        "fit_s": fitted.fit_seconds,
        "sample_s_10k": sample_seconds * PER / config.sample_size,
        "test_loglik": loglik,
    }
    return Evaluated(row | sample_metrics(samples, data.train, data.test, seed=seed), samples)
