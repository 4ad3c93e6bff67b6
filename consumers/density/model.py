"""``fit(data, config)``: the diffusion density estimator of Liu et al., "Diffusion-Model-Assisted
Supervised Learning of Generative Models for Density Estimation" (arXiv:2310.14458), end to end.

1. draw ``pairs`` noise points ``z₁ ~ N(0, I)``;
2. carry them through the probability-flow ODE (D5) with the training-free score (D4) to ``z₀``;
3. fit the MLP generator (D8) on the pairs ``(z₁, z₀)``.

:class:`DiffusionDensity` then samples with the generator (one forward pass), or with the ODE
itself, and scores points by (D7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consumers.density.config import DensityConfig
from consumers.density.schedule import Schedule
from graph.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from consumers.density.generator import MLPGenerator
    from graph.progress import StageProgress


@dataclass
class DiffusionDensity:
    """A fitted estimator: the data ``[m, d]`` (the score's Monte Carlo sample), its config and the
    generator with its loss per epoch. Samples and log-densities come back on the CPU."""

    data: Tensor
    config: DensityConfig
    generator: MLPGenerator
    losses: list[float] = field(default_factory=list)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.config.eps)

    def _seed(self, seed: int | None) -> int:
        return self.config.seed + 1 if seed is None else seed  # default: noise the generator never saw

    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """``n`` samples [n, d] from the generator (D8)."""
        return self.generator.sample(n, self._seed(seed))

    def ode_sample(self, n: int, seed: int | None = None, progress: StageProgress | None = None) -> Tensor:
        """``n`` samples [n, d] from the ODE (D5), from the same noise as :meth:`sample` with that seed."""
        from consumers.density.generator import standard_noise

        noise = standard_noise(n, self.data.shape[1], self._seed(seed))
        return _ode_samples(noise, self.data, self.config, progress)

    def log_prob(self, x: Tensor | np.ndarray, progress: StageProgress | None = None) -> Tensor:
        """(D7): log p(x) of the points ``x`` [n, d] → [n] float64 (:mod:`consumers.density.likelihood`)."""
        from consumers.density.likelihood import log_prob

        c = self.config
        return log_prob(
            _as_points(x, self.data.shape[1]),
            self.data,
            self.schedule,
            steps=c.likelihood_steps,
            solver=c.likelihood_solver,
            batch_size=c.batch_size,
            chunk=c.chunk,
            seed=c.seed,
            progress=progress,
        )

    def save(
        self,
        path: str | Path,
        *,
        feature_names: Sequence[str] | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        info: dict[str, Any] | None = None,
    ) -> Path:
        """Write the estimator to one file (:mod:`consumers.density.persist`; read back with
        :func:`~consumers.density.persist.load_density`), with the data's column names and
        standardisation (default: ``x0…``, mean 0, std 1) and provenance ``info``."""
        from consumers.density.persist import save_density

        names = None if feature_names is None else list(feature_names)
        return save_density(path, self, feature_names=names, mean=mean, std=std, info=info)


def _as_points(data: Tensor | np.ndarray, dim: int | None = None) -> Tensor:
    """Rows of finite float32 coordinates [n, d], or an :class:`InputError`."""
    import numpy as np
    import torch

    points = torch.as_tensor(np.asarray(data, dtype=np.float32))
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
        raise InputError(f"expected points as an [n, d] array, got shape {tuple(points.shape)}")
    if dim is not None and points.shape[1] != dim:
        raise InputError(f"expected points with {dim} coordinates, got {points.shape[1]}")
    if not torch.isfinite(points).all():
        raise InputError("the points hold NaN or infinite values; drop or impute them first")
    return points


def _ode_samples(
    noise: Tensor, data: Tensor, config: DensityConfig, progress: StageProgress | None
) -> Tensor:
    from consumers.density.ode import sample

    c = config
    return sample(
        noise,
        data,
        Schedule(c.eps),
        steps=c.steps,
        grid=c.grid,
        solver=c.solver,
        batch_size=c.batch_size,
        chunk=c.chunk,
        seed=c.seed,
        progress=progress,
    )


def fit(
    data: Tensor | np.ndarray, config: DensityConfig | None = None, progress: StageProgress | None = None
) -> DiffusionDensity:
    """Label ``config.pairs`` noise points with the ODE on ``data`` [m, d], fit the generator on them."""
    from consumers.density.generator import fit_generator, standard_noise

    c = config if config is not None else DensityConfig()
    points = _as_points(data)
    if points.shape[0] < 2:
        raise InputError("need at least 2 data points to fit a density")
    points = points.to(c.device)
    noise = standard_noise(c.pairs, points.shape[1], c.seed)
    samples = _ode_samples(noise, points, c, progress)
    generator, losses = fit_generator(
        noise.to(c.device),
        samples.to(c.device),
        width=c.width,
        depth=c.depth,
        epochs=c.epochs,
        batch_size=c.mlp_batch,
        lr=c.lr,
        seed=c.seed,
        progress=progress,
    )
    return DiffusionDensity(points, c, generator, losses)
