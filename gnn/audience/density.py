"""Density-ratio audiences: users ranked by how much denser the campaign's seed is around them than
the population, with the training-free diffusion density estimator of Liu et al., "Diffusion-Model-
Assisted Supervised Learning of Generative Models for Density Estimation" (arXiv:2310.14458).

The seed is lookalike's (:mod:`gnn.audience.lookalike`): the converters of the advertiser's
campaigns that ended before campaign c started (:meth:`ConversionLog.seed_for`), in the GNN's user
space. With :math:`\\hat z_u = z_u / \\lVert z_u \\rVert` the unit user embeddings [n, dim]:

.. math::

    (A1)\\; y_u = \\Lambda^{-1/2} W^\\top (\\hat z_u - m) \\in \\mathbb R^{d}

PCA to ``dims`` = d components, whitened by the population (mean m, each component of unit
variance: "standardised units"; sklearn's ``PCA(whiten=True)``). Each seed user s carries lookalike's
relatedness weight, :math:`a_{cc'} = \\max(0, \\cos(q_c, q_{c'})) + \\epsilon_a` (``epsilon``) spread
over the converters :math:`S_{c'}` of each past campaign c':

.. math::

    (A2)\\; \\pi_s \\propto \\sum_{c'} \\frac{a_{cc'}}{|S_{c'}|} [s \\in S_{c'}], \\qquad
    (A3)\\; p_{seed}(y) = \\sum_s \\pi_s \\mathcal N(y; y_s, h_c^2 I), \\quad
    p_{pop}(y) = \\frac{1}{|P|} \\sum_{v \\in P} \\mathcal N(y; y_v, h_P^2 I)

(P: all users, or ``population_sample`` of them), and the score is the log density ratio

.. math::

    (A4)\\; s(u, c) = \\log p_{seed}(y_u) - \\log p_{pop}(y_u)

which by Bayes' rule is, up to a constant, the log-odds that a user at :math:`y_u` is drawn from
the seed rather than from the population ("looks like a converter"). The weights (A2) enter by
systematic resampling: ``seed_draws`` rows drawn from the seed ∝ π (each user ≈ R·π_s copies; the
copy counts divided by their common divisor, so an unweighted seed is its distinct users), so the
estimator sees plain data.

**Bandwidths** (``h²``, the paper's ε, in standardised units) are chosen per density by k-fold
held-out log-likelihood over the grid ``bandwidths`` (folds over distinct users, weighted by π),
(A5) :math:`h^2 = \\arg\\max_{h^2} \\sum_k \\sum_{i \\in F_k} \\pi_i \\log p^{(-k)}_{h}(y_i)`, with the
closed-form Gaussian KDE (:func:`consumers.density.likelihood.kde_log_prob`, the density
(D7) computes); with one distinct seed user, or an empty grid, Scott's rule
:math:`h = n_{eff}^{-1/(d+4)}`, :math:`n_{eff} = (\\sum \\pi)^2 / \\sum \\pi^2`.

**Densities.** ``likelihood="ode"`` (default) evaluates (A3) as the paper's probability-flow ODE
likelihood (D7) with the training-free score (D4) on the whole data set
(:func:`consumers.density.likelihood.log_prob`), which is the Gaussian KDE of bandwidth √ε up to
the solver and the N(0, I) prior it assumes at t = 1 (the true p_1 is centred at ε x_j: an error of
order ε‖x‖, 0.2-2 nats at ε = 0.3-0.6). So the data are first rescaled to make the schedule's ε the
small ``flow_eps``: with :math:`\\sigma = \\sqrt{\\epsilon_f / h^2}`,

.. math::

    (A6)\\; \\log p_h(y) = \\log p^{(D7)}_{\\epsilon_f}(\\sigma y; \\{\\sigma y_j\\}) + d \\log \\sigma

(agrees with the closed form within ~0.03 nats at ε_f = 0.02 and 200 Heun steps:
``tests/test_audience_density.py``). ``likelihood="kde"`` uses the closed form itself. Only the
estimator's likelihood is needed: its MLP generator (D8) samples and has no density, so
:func:`consumers.density.model.fit`, which trains one, is not called. The seed users' own kernels
are in p_seed, so past converters rank high (as in lookalike). Shapes: the seed [R, d], the
population [|P|, d], the scored users [n, d] → scores [n].
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gnn.audience.base import AudienceError, GraphPath, positions, score_frame
from gnn.audience.gnn import GNNConfig, GNNTargeter
from gnn.audience.lookalike import ConversionLog, campaign_vector, read_seed, relatedness, unit
from graph.errors import InputError
from graph.store import GraphStore

LIKELIHOODS = ("ode", "kde")


@dataclass(frozen=True)
class DensityTargeterConfig:
    """Args: gnn: the embedding model; conversions, windows: the advertiser's past conversion log
    and campaign schedule (as lookalike's); epsilon: lookalike's relatedness floor ε_a of (A2);
    dims: PCA components d (the ODE is practical in low dimension); bandwidths: the grid of h² (A5)
    (empty: Scott's rule); folds: k of (A5); population_sample: users in p_pop (a seeded sample
    beyond that); seed_draws: R of the resampled seed; likelihood: ``ode`` (D7) or ``kde`` (closed
    form); flow_eps, steps: the schedule's ε and the Heun steps of (A6); seed: PCA, folds, samples."""

    gnn: GNNConfig = field(default_factory=GNNConfig)
    conversions: Path | None = None
    windows: Path | None = None
    epsilon: float = 0.1
    dims: int = 6
    bandwidths: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    folds: int = 5
    population_sample: int = 5000
    seed_draws: int = 1000
    likelihood: str = "ode"
    flow_eps: float = 0.02
    steps: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dims", "population_sample", "seed_draws", "steps"):
            if getattr(self, name) < 1:
                raise InputError(f"density targeter: {name} must be at least 1, got {getattr(self, name)}")
        if self.folds < 2:
            raise InputError(f"density targeter: folds must be at least 2, got {self.folds}")
        if any(not h > 0 for h in self.bandwidths):
            raise InputError(f"density targeter: bandwidths must be positive, got {self.bandwidths}")
        if self.likelihood not in LIKELIHOODS:
            raise InputError(f"density targeter: likelihood must be one of {', '.join(LIKELIHOODS)}")
        if not 0.0 < self.flow_eps < 1.0:
            raise InputError(f"density targeter: flow_eps must lie in (0, 1), got {self.flow_eps}")
        if not self.epsilon > 0:
            raise InputError(
                f"density targeter: epsilon (every past campaign's weight floor) must be positive, "
                f"got {self.epsilon}"
            )


class DensityTargeter:
    """Seed-vs-population density ratio in the GNN's reduced user space (see the module docstring)."""

    name = "density"
    config_type = DensityTargeterConfig

    def __init__(self, log: ConversionLog | None = None, gnn: GNNTargeter | None = None) -> None:
        self.log, self.gnn = log, gnn
        self.config = DensityTargeterConfig()
        self.users: list[str] = []
        self.y = np.zeros((0, 0))  # (A1) [n, d]
        self.log_pop = np.zeros(0)  # log p_pop(y_u) [n]
        self.bandwidth: dict[str, float] = {}  # h² per campaign ("population" for p_pop)

    def fit(self, store: GraphStore, config: DensityTargeterConfig | None = None) -> DensityTargeter:
        """Train the GNN (unless given), read the log, reduce the users (A1), choose h_P² (A5) and
        score every user under p_pop (A3): once, whatever the campaign."""
        from sklearn.decomposition import PCA

        self.config = c = config or DensityTargeterConfig()
        self.log = read_seed(self.name, self.log, c.conversions, c.windows)
        if self.gnn is None:
            self.gnn = GNNTargeter().fit(store, c.gnn)
        users, z = self.gnn.embeddings("User")
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        rng = np.random.default_rng(c.seed)
        pop = np.sort(rng.choice(len(zn), min(len(zn), c.population_sample), replace=False))
        dims = min(c.dims, zn.shape[1], len(pop) - 1)
        if dims < 1:
            raise AudienceError("density needs at least 2 users in the store")
        pca = PCA(n_components=dims, whiten=True, random_state=c.seed).fit(zn[pop])
        self.users, self.y = list(users), pca.transform(zn)
        h2 = self._bandwidth(self.y[pop], np.ones(len(pop)))
        self.bandwidth["population"] = h2
        self.log_pop = self._log_density(self.y, self.y[pop], h2)
        return self

    def with_log(self, log: ConversionLog) -> DensityTargeter:
        """The fitted targeter with another conversion log (the population part is shared, not redone)."""
        other = copy.copy(self)
        other.log, other.bandwidth = log, {"population": self.bandwidth["population"]}
        return other

    def _ready(self) -> tuple[ConversionLog, GNNTargeter]:
        if self.log is None or self.gnn is None or not self.users:
            raise AudienceError("the density targeter is not fitted; call fit(store, config) first")
        return self.log, self.gnn

    def seed_weights(self, campaign: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """(rows of the distinct seed users, their π of (A2) summing to 1, the seed log rows)."""
        log, gnn = self._ready()
        seed = log.seed_for(campaign)
        q = unit(campaign_vector(gnn, campaign))  # an unknown campaign stops here
        if not len(seed):
            raise AudienceError(
                f"no seed for {campaign!r}: no campaign in the conversion log ended before it started"
            )
        seed = seed.assign(row=positions(self.users, seed["user"]))
        seed = seed[seed["row"] >= 0]
        if not len(seed):
            raise AudienceError(
                f"no seed for {campaign!r}: none of its past converters is a user of the store"
            )
        a = {p: relatedness(gnn, q, str(p), self.config.epsilon) for p in seed["campaign"].unique()}
        share = seed["campaign"].map(a) / seed.groupby("campaign")["row"].transform("size")
        w = share.groupby(seed["row"]).sum()  # a user who converted on several campaigns: summed
        return w.index.to_numpy(), (w / w.sum()).to_numpy(), seed

    def score(self, campaign: str) -> pd.DataFrame:
        """(A4) for every user of the store, best first."""
        rows, w, _ = self.seed_weights(campaign)
        h2 = self._bandwidth(self.y[rows], w)
        self.bandwidth[campaign] = h2
        data = self.y[np.repeat(rows, _copies(w, self.config.seed_draws, self.config.seed))]
        ratio = self._log_density(self.y, data, h2) - self.log_pop
        if not np.isfinite(ratio).all():
            raise AudienceError(
                f"density scores for {campaign!r} are not finite; try a larger bandwidth grid"
            )
        return score_frame(self.users, ratio)

    def explain(self, user: str, campaign: str) -> list[GraphPath]:
        """The seed users whose kernels make most of p_seed at ``user`` (weight: their share)."""
        rows, w, seed = self.seed_weights(campaign)
        me = positions(self.users, [user])[0]
        if me < 0:
            raise AudienceError(f"unknown user {user!r}")
        h2 = self.bandwidth.get(campaign) or self._bandwidth(self.y[rows], w)
        logits = np.log(w) - np.square(self.y[rows] - self.y[me]).sum(1) / (2 * h2)
        share = np.exp(logits - logits.max())
        share /= share.sum()
        top = np.argsort(-share, kind="stable")[:5]
        past = seed.groupby("row")["campaign"].first()
        return [
            GraphPath(
                (user, self.users[rows[k]], str(past[rows[k]])),
                ("User", "User", "Campaign"),
                ("LOOKS_LIKE", "CONVERTED_ON"),
                float(share[k]),
            )
            for k in top
        ]

    def _bandwidth(self, y: np.ndarray, w: np.ndarray) -> float:
        """h² of (A5) by weighted k-fold held-out log-likelihood; Scott's rule when it cannot."""
        c, (n, d) = self.config, y.shape
        if n < 2 or not c.bandwidths:
            return float((w.sum() ** 2 / np.square(w).sum()) ** (-2.0 / (d + 4)))
        fold = np.random.default_rng(c.seed).permutation(n) % min(c.folds, n)
        scores = [
            sum(w[k] @ _kde(y[k], y[~k], w[~k], h2) for k in (fold == f for f in np.unique(fold)))
            for h2 in c.bandwidths
        ]
        return float(c.bandwidths[int(np.argmax(scores))])

    def _log_density(self, x: np.ndarray, data: np.ndarray, h2: float) -> np.ndarray:
        """log p_h(x) [n] of the KDE on ``data`` [m, d]: (D7) rescaled by (A6), or the closed form."""
        if self.config.likelihood == "kde":
            return _kde(x, data, np.ones(len(data)), h2)
        import torch

        from consumers.density.likelihood import log_prob
        from consumers.density.schedule import Schedule

        c = self.config
        s = math.sqrt(c.flow_eps / h2)
        lp = log_prob(
            torch.from_numpy(x * s),
            torch.from_numpy(data * s),
            Schedule(c.flow_eps),
            steps=c.steps,
            solver="heun",
            batch_size=len(data),  # the whole data set: the exact score (D4), no Monte Carlo noise
            seed=c.seed,
        )
        return np.asarray(lp.numpy() + x.shape[1] * math.log(s))


def _kde(x: np.ndarray, data: np.ndarray, w: np.ndarray, h2: float) -> np.ndarray:
    """log Σ_j (w_j / Σw) N(x; data_j, h² I) → [n] (weighted :func:`kde_log_prob`)."""
    from scipy.spatial.distance import cdist
    from scipy.special import logsumexp

    d = x.shape[1]
    lp = logsumexp(-cdist(x, data, "sqeuclidean") / (2 * h2), b=w / w.sum(), axis=1)
    return np.asarray(lp - 0.5 * d * math.log(2 * math.pi * h2))


def _copies(w: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """Copies [m] of each seed row: about ``draws`` systematic draws ∝ ``w`` (a multiple of m, so
    equal weights give equal copies), divided by their common divisor (equal weights: one each)."""
    m = len(w)
    counts = np.bincount(_systematic(w, m * max(1, round(draws / m)), seed), minlength=m)
    return np.asarray(counts // np.gcd.reduce(counts[counts > 0]))


def _systematic(w: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """Systematic resampling: ``draws`` indices into ``w`` [m] (index i about draws·w_i times)."""
    u = np.random.default_rng(seed).random()
    cdf = np.cumsum(w) / w.sum()
    return np.minimum(np.searchsorted(cdf, (np.arange(draws) + u) / draws), len(w) - 1)
