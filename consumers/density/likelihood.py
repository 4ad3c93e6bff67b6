"""Log-density of points through the probability-flow ODE (D7) (Liu et al., "Diffusion-Model-
Assisted Supervised Learning of Generative Models for Density Estimation", arXiv:2310.14458).

Along a solution of (D5), ``d log p_t(z_t)/dt = −∇·v(z_t, t)`` (the instantaneous change of
variables), so with ``z_0 = x`` carried up to ``t = 1``:

    (D7)  log p_0(x) = log N(z_1; 0, I) + ∫_0^1 ∇·v(z_t, t) dt

with ``∇·v`` in closed form from the estimator (D6): no Jacobian, no Hutchinson trace.

Which density this is. With the whole data set as the batch, (D4) is the exact score of
``p_t = (1/m) Σ_j N(α_t x_j, β_t² I)`` and the flow carries ``p_1`` to ``p_0`` exactly, so (D7)
returns the log-density of a Gaussian kernel density estimate with bandwidth ``√ε``:

    p_0(x) = (1/m) Σ_j N(x; x_j, ε I)                                    (:func:`kde_log_prob`)

up to the solver's error and the prior: the true ``p_1`` is ``(1/m) Σ_j N(ε x_j, I)``, not
``N(0, I)`` (a difference of order ``ε‖x‖``). So ``ε`` is the bandwidth: the paper's ``ε = 1e-4``
gives a density that is spiked at the training points; held-out points are scored sensibly only
with a larger ``ε`` (in the data's units), or with the mini-batch estimator, whose noise and
whose solver error smooth it further (a stochastic, biased estimate). This is the density the
ODE sampler draws from; the MLP generator (:mod:`.generator`) has none of its own (it is not
invertible). The paper evaluates its generators by samples; (D7) is the estimate the paper's
ODE supports. The integration runs in float64 on the ``log`` time grid (:mod:`.ode`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from consumers.density.ode import flow, time_grid

if TYPE_CHECKING:
    from torch import Tensor

    from consumers.density.schedule import Schedule
    from graph.progress import StageProgress


def log_prob(
    x: Tensor,
    data: Tensor,
    schedule: Schedule,
    *,
    steps: int = 200,
    solver: str = "heun",
    grid: str = "log",
    batch_size: int = 2048,
    chunk: int = 1024,
    seed: int = 0,
    progress: StageProgress | None = None,
) -> Tensor:
    """(D7): log p_0 of the points ``x`` [n, d] under the flow built on ``data`` [m, d] → [n] (float64)."""
    import torch

    times = time_grid(schedule, steps, grid)
    z1, integral = flow(
        x.double(),
        data.double(),
        schedule,
        times,
        solver=solver,
        batch_size=batch_size,
        chunk=chunk,
        seed=seed,
        progress=progress,
        name="ODE likelihood",
    )
    log_prior = -0.5 * (z1.square().sum(1) + x.shape[1] * math.log(2 * math.pi))
    return torch.as_tensor(log_prior + integral)


def kde_log_prob(x: Tensor, data: Tensor, schedule: Schedule, t: float = 0.0) -> Tensor:
    """The exact log p_t(x) = log (1/m) Σ_j N(x; α_t x_j, β_t² I) of the full-data estimator → [n]."""
    import torch

    a, b2 = schedule.alpha(t), schedule.beta2(t)
    d2 = torch.cdist(x.double(), a * data.double()).square()
    m, d = data.shape
    return torch.logsumexp(-d2 / (2 * b2), dim=1) - math.log(m) - 0.5 * d * math.log(2 * math.pi * b2)
