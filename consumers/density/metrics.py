"""Sample-quality metrics of issue 19: how far a model's samples ``y`` are from held-out data ``x``.

All take float arrays ``[rows, dim]`` (standardised data: :mod:`.data`), subsample each side to at
most ``max_n`` rows with ``seed`` so they stay fast, and return plain floats:

- :func:`mmd2`: unbiased squared maximum mean discrepancy (Gretton et al., JMLR 2012, eq. 3) with
  the Gaussian kernel ``k(a, b) = exp(−‖a − b‖² / 2σ²)``, ``σ`` the median pairwise distance of
  the pooled sample (median heuristic);
  ``MMD²_u = Σ_{i≠j} k(x_i, x_j)/m(m−1) + Σ_{i≠j} k(y_i, y_j)/n(n−1) − 2 Σ_{i,j} k(x_i, y_j)/mn``
  (can be slightly negative when the two distributions agree);
- :func:`energy_distance`: ``2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖`` (Székely & Rizzo 2013), the
  within-sample terms averaged over distinct pairs (scipy's ``energy_distance`` is 1-D only);
- :func:`sliced_wasserstein`: the mean over ``n_projections`` random unit directions ``θ`` of the
  1-D Wasserstein-1 distance between ``⟨x, θ⟩`` and ``⟨y, θ⟩`` (Rabin et al. 2011; Bonneel et al. 2015);
- :func:`c2st`: classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): the cross-validated
  accuracy of a classifier (gradient-boosted trees by default) told to separate ``x`` from ``y``
  (equal sizes); 0.5 means indistinguishable, 1.0 fully separable. Weak on small samples: a
  blurred checkerboard scores ≈ 0.55–0.58 with 2×600–2,000 points;
- :func:`memorisation`: whether samples copy the training set (:class:`Memorisation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]
MAX_N = 2000


def _rows(x: ArrayLike, max_n: int, rng: np.random.Generator) -> Array:
    """``x`` as float64 ``[rows, dim]``, at most ``max_n`` rows drawn without replacement."""
    a = np.asarray(x, dtype=np.float64)
    a = a.reshape(len(a), -1)
    return a if len(a) <= max_n else a[rng.choice(len(a), max_n, replace=False)]


def _offdiag_mean(d: Array) -> float:
    n = len(d)
    return float((d.sum() - np.trace(d)) / (n * (n - 1)))


def mmd2(x: ArrayLike, y: ArrayLike, max_n: int = MAX_N, seed: int = 0) -> float:
    """Unbiased MMD² with a median-heuristic Gaussian kernel (see the module docstring)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    a, b = _rows(x, max_n, rng), _rows(y, max_n, rng)
    pooled = np.concatenate([a, b])
    d2 = cdist(pooled, pooled, "sqeuclidean")
    upper = d2[np.triu_indices(len(pooled), k=1)]
    sigma2 = float(np.median(upper)) or 1.0  # median of d² = (median distance)²
    k = np.exp(-d2 / (2.0 * sigma2))
    m = len(a)
    return _offdiag_mean(k[:m, :m]) + _offdiag_mean(k[m:, m:]) - 2.0 * float(k[:m, m:].mean())


def energy_distance(x: ArrayLike, y: ArrayLike, max_n: int = MAX_N, seed: int = 0) -> float:
    """Multivariate energy distance ``2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖`` (distinct pairs within samples)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    a, b = _rows(x, max_n, rng), _rows(y, max_n, rng)
    between = float(cdist(a, b).mean())
    return 2.0 * between - _offdiag_mean(cdist(a, a)) - _offdiag_mean(cdist(b, b))


def sliced_wasserstein(
    x: ArrayLike, y: ArrayLike, n_projections: int = 128, max_n: int = 5000, seed: int = 0
) -> float:
    """Mean 1-D Wasserstein-1 distance over ``n_projections`` seeded random unit directions."""
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    a, b = _rows(x, max_n, rng), _rows(y, max_n, rng)
    theta = rng.normal(size=(a.shape[1], n_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = a @ theta, b @ theta
    return float(np.mean([wasserstein_distance(pa[:, k], pb[:, k]) for k in range(n_projections)]))


def c2st(
    x: ArrayLike, y: ArrayLike, max_n: int = MAX_N, seed: int = 0, folds: int = 5, model: Any = None
) -> float:
    """Cross-validated accuracy of ``model`` separating ``x`` (label 0) from ``y`` (label 1), both
    cut to the same size so chance is 0.5. Default: scikit-learn's ``HistGradientBoostingClassifier``
    (on a checkerboard against its copy blurred by ``N(0, 0.3²)``, 2×2,000 points, it scored 0.58
    in 2 s where sbi's choice, an MLP with two hidden layers of ``10·dim`` and early stopping,
    stayed at 0.50)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(seed)
    a, b = _rows(x, max_n, rng), _rows(y, max_n, rng)
    m = min(len(a), len(b))
    data = np.concatenate([a[:m], b[:m]])
    labels = np.repeat([0, 1], m)
    model = model if model is not None else HistGradientBoostingClassifier(random_state=seed)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(model, data, labels, cv=cv, scoring="accuracy")))


@dataclass(frozen=True)
class Memorisation:
    """Does a generator copy its training points?

    ``median_ratio``: the median distance of a sample to its nearest training point over the median
    distance of a held-out point to its nearest training point (the data-copying idea of Meehan et
    al., AISTATS 2020). Held-out points are fresh draws of the data distribution, so a model that
    samples it without copying gives ≈ 1; copies of training points give 0. (Comparing each
    sample's distance to the training set with its distance to the held-out set instead is biased
    by the sets' sizes, and subsampling the training set to the held-out size hides copies of the
    points left out.)

    ``share_memorised``: the share of samples whose nearest training point is less than a third of
    the distance to the second nearest (Gu et al., "On Memorization in Diffusion Models",
    arXiv:2310.02664; a sample on a training point counts). ``share_heldout`` is the same share for
    the held-out points themselves: what genuinely new points score (in 2-D, about (1/3)² of a
    locally uniform density); read ``share_memorised`` against it.
    """

    median_ratio: float
    share_memorised: float
    share_heldout: float
    n_samples: int


def _nn_ratio(dist: Array) -> Array:
    """``d₁ / d₂`` from distances to the two nearest training points (0 when ``d₁ = 0``)."""
    return np.where(dist[:, 0] > 0, dist[:, 0] / np.maximum(dist[:, 1], 1e-300), 0.0)


def memorisation(
    samples: ArrayLike,
    train: ArrayLike,
    heldout: ArrayLike,
    max_n: int = 5000,
    seed: int = 0,
    threshold: float = 1 / 3,
) -> Memorisation:
    """:class:`Memorisation` of ``samples`` against ``train`` (what the model saw) and ``heldout``
    (fresh points of the same distribution); the training set is cut to ``10·max_n`` rows."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    s, held, tr = _rows(samples, max_n, rng), _rows(heldout, max_n, rng), _rows(train, 10 * max_n, rng)
    index = NearestNeighbors(n_neighbors=2).fit(tr)
    d_s, d_h = index.kneighbors(s)[0], index.kneighbors(held)[0]
    return Memorisation(
        median_ratio=float(np.median(d_s[:, 0]) / max(float(np.median(d_h[:, 0])), 1e-300)),
        share_memorised=float(np.mean(_nn_ratio(d_s) < threshold)),
        share_heldout=float(np.mean(_nn_ratio(d_h) < threshold)),
        n_samples=len(s),
    )


def sample_metrics(samples: ArrayLike, train: ArrayLike, test: ArrayLike, seed: int = 0) -> dict[str, float]:
    """Every metric of ``samples`` against the ``test`` split (memorisation against ``train``)."""
    memo = memorisation(samples, train, test, seed=seed)
    return {
        "mmd2": mmd2(test, samples, seed=seed),
        "energy": energy_distance(test, samples, seed=seed),
        "sliced_w1": sliced_wasserstein(test, samples, seed=seed),
        "c2st": c2st(test, samples, seed=seed),
        "memo_median_ratio": memo.median_ratio,
        "memo_share": memo.share_memorised,
        "memo_share_heldout": memo.share_heldout,
    }
