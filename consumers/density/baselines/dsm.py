"""A trained score model: denoising score matching (Vincent 2011; Song et al., "Score-Based
Generative Modeling through Stochastic Differential Equations", ICLR 2021) on the schedule of the
training-free model, sampled by the same probability-flow ODE. It is what the training-free
method replaces a trained network with.

Schedule (D1): ``α_t = 1 − (1−ε)t``, ``β_t² = ε + (1−ε)t``; ``x_t = α_t x + β_t ξ``, ``ξ ~ N(0, I)``.
A small MLP predicts the noise, so the score is ``s(x_t, t) = −ξ̂ / β_t``. Loss:

    L = E_{x, t, ξ} ‖ξ̂(α_t x + β_t ξ, t) − ξ‖²      (= β_t² × the DSM loss of the score)

with ``log σ_t`` uniform on ``[log σ(0), log σ(1)]``, ``σ_t = β_t / α_t`` (``t_sampling="log_sigma"``,
the default: the sampler's grid) or ``t ~ U[0, 1]`` (``"uniform"``). The MLP ``F`` sees ``x_t`` and
sinusoidal features of ``u = log σ_t`` rescaled to ``[0, 1]``, and is preconditioned as in EDM
(Karras et al., NeurIPS 2022, with ``σ_data = 1``, standardised data):

    ξ̂(x, t) = β_t x / (α_t² + β_t²) − α_t F(x, u) / √(α_t² + β_t²)

so ``ξ̂`` is the exact noise of standard normal data plus a learnt correction that vanishes where
``α_t → 0``. Without it the network's small errors in ``ξ̂ ≈ x`` at ``t ≈ 1`` add up over the
sampler's many steps there and blur the samples.

Sampler (:func:`euler_probability_flow`, this module's own, small; :mod:`consumers.density.ode` may
replace it): the probability-flow ODE ``dx/dt = f x − ½ g² s`` written in ``y = x / α_t`` and
``σ = β_t / α_t`` is ``dy/dσ = ξ̂(x, t)`` (Karras et al., NeurIPS 2022, eq. 4); Euler steps in ``σ``
(that is DDIM, Song et al., ICLR 2021) on a grid uniform in ``log σ`` from ``σ(1) = 1/ε`` to
``σ(0) = √ε``, started from ``x_1 ~ N(0, (α_1² + β_1²) I)`` (standardised data). Uniform steps in
``t`` would be unstable: ``α_1 = ε`` makes ``σ`` span six decades in the last step.
``log_prob`` is ``None``: the likelihood of the ODE is :mod:`consumers.density.likelihood`'s job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from consumers.density.baselines.base import Array, float_tensors, seeded_build
from graph.errors import InputError


@dataclass(frozen=True)
class DSMConfig:
    """eps: the schedule's ε; hidden, layers: the MLP; steps, batch_size, lr: Adam training (10,000
    steps ≈ 30 s in 2-D on one thread; 3,000 leave a checkerboard blurred); ode_steps: Euler steps of
    the sampler; n_freq: sinusoidal features of ``log σ_t``; t_sampling: ``log_sigma`` or ``uniform``."""

    eps: float = 1e-4
    hidden: int = 128
    layers: int = 3
    steps: int = 10_000
    batch_size: int = 256
    lr: float = 1e-3
    ode_steps: int = 100
    n_freq: int = 4
    t_sampling: str = "log_sigma"

    def __post_init__(self) -> None:
        if self.t_sampling not in ("log_sigma", "uniform"):
            raise InputError(f"t_sampling must be log_sigma or uniform, got {self.t_sampling!r}")


def alpha_beta(t: Any, eps: float) -> tuple[Any, Any]:
    """(D1) ``α_t`` and ``β_t`` for a tensor or float ``t``."""
    return 1.0 - (1.0 - eps) * t, (eps + (1.0 - eps) * t) ** 0.5


def t_of_sigma(sigma: Array, eps: float) -> Array:
    """The ``t`` with ``β_t / α_t = σ``: with ``u = (1−ε)t``, ``σ²(1 − u)² = ε + u``, the smaller root."""
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    u = (2 * s2 + 1 - np.sqrt(1 + 4 * s2 * (1 + eps))) / (2 * s2)
    return np.clip(u / (1 - eps), 0.0, 1.0)


class NoiseMLP:
    """``ξ̂(x, t)``: the preconditioned MLP ``F`` on ``[x, u, sin(2^k π u), cos(2^k π u)]``
    (``k < n_freq``, ``u`` = rescaled ``log σ_t``), SiLU activations (module docstring)."""

    def __init__(self, dim: int, config: DSMConfig) -> None:
        from torch import nn

        width = dim + 1 + 2 * config.n_freq
        layers: list[nn.Module] = []
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.SiLU()]
            width = config.hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, dim))
        self.n_freq = config.n_freq
        self.dim = dim
        self.eps = config.eps
        self.log_sigma = (0.5 * math.log(config.eps), -math.log(config.eps))  # σ(0) = √ε, σ(1) = 1/ε

    def __call__(self, x: Any, t: Any) -> Any:
        import torch

        a, b = alpha_beta(t.reshape(-1, 1).expand(len(x), 1), self.eps)
        u = (torch.log(b / a) - self.log_sigma[0]) / (self.log_sigma[1] - self.log_sigma[0])
        angles = u * math.pi * 2.0 ** torch.arange(self.n_freq, dtype=x.dtype)
        out = self.net(torch.cat([x, u, angles.sin(), angles.cos()], dim=1))
        var = a**2 + b**2
        return b * x / var - a / var.sqrt() * out


def euler_probability_flow(model: Callable[[Any, Any], Any], x1: Any, eps: float, steps: int) -> Any:
    """Integrate the probability-flow ODE from ``t = 1`` (``x1``) to ``t = 0`` (module docstring);
    ``model(x, t)`` predicts the noise ``ξ̂`` of ``x`` at time ``t`` (a 0-d tensor)."""
    import torch

    sigmas = np.geomspace(1.0 / eps, math.sqrt(eps), steps + 1)
    ts = t_of_sigma(sigmas, eps)
    x = x1
    with torch.no_grad():
        for i in range(steps):
            a_t, _ = alpha_beta(float(ts[i]), eps)
            a_s, _ = alpha_beta(float(ts[i + 1]), eps)
            xi = model(x, torch.tensor(float(ts[i]), dtype=x.dtype))
            x = (a_s / a_t) * x + a_s * float(sigmas[i + 1] - sigmas[i]) * xi
    return x


class DSM:
    """A noise-prediction MLP trained by denoising score matching, sampled by the probability-flow ODE."""

    name = "dsm"

    def __init__(self, config: DSMConfig | None = None) -> None:
        self.config = config or DSMConfig()
        self.fit_seconds = 0.0
        self.valid_loss = float("nan")
        self._model: NoiseMLP | None = None

    def _loss(self, model: NoiseMLP, x: Any, generator: Any) -> Any:
        import torch

        t = torch.rand(len(x), 1, generator=generator, dtype=torch.float64)
        if self.config.t_sampling == "log_sigma":
            lo, hi = 0.5 * math.log(self.config.eps), -math.log(self.config.eps)
            t = torch.as_tensor(t_of_sigma(torch.exp(lo + (hi - lo) * t).numpy(), self.config.eps))
        t = t.float()
        noise = torch.randn(x.shape, generator=generator)
        a, b = alpha_beta(t, self.config.eps)
        return ((model(a * x + b * noise, t) - noise) ** 2).sum(dim=1).mean()

    def fit(self, train: Array, valid: Array, seed: int = 0) -> Self:
        import torch

        start = time.perf_counter()
        c = self.config
        x, v = float_tensors(train, valid)
        model = seeded_build(seed, lambda: NoiseMLP(x.shape[1], c))
        optimiser = torch.optim.Adam(model.net.parameters(), lr=c.lr)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(c.steps):
            batch = x[torch.randint(len(x), (c.batch_size,), generator=generator)]
            loss = self._loss(model, batch, generator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            self.valid_loss = float(self._loss(model, v, torch.Generator().manual_seed(seed + 1)))
        self._model = model
        self.fit_seconds = time.perf_counter() - start
        return self

    def log_prob(self, x: Array) -> None:
        return None

    def sample(self, n: int, seed: int = 0) -> Array:
        import torch

        if self._model is None:
            raise InputError("call fit(train, valid) before sample")
        eps = self.config.eps
        a1, b1 = alpha_beta(1.0, eps)
        generator = torch.Generator().manual_seed(seed)
        x1 = torch.randn(n, self._model.dim, generator=generator) * math.sqrt(a1**2 + b1**2)
        x0 = euler_probability_flow(self._model, x1, eps, self.config.ode_steps)
        return np.asarray(x0.numpy(), dtype=np.float64)
