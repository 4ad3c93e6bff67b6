"""The training-free score (D3)–(D4) and its divergence (D6) (Liu et al., "Diffusion-Model-Assisted
Supervised Learning of Generative Models for Density Estimation", arXiv:2310.14458).

For the empirical data ``{x_j}`` diffused by (D2), ``p_t(z) = (1/m) Σ_j N(z; α_t x_j, β_t² I)``,
whose score is a softmax-weighted pull towards the scaled data points:

    (D3)  w_j(z, t) = softmax_j(−‖z − α_t x_j‖² / 2β_t²)          (log-sum-exp; the ‖z‖² term cancels)
    (D4)  s(z, t) = Σ_j w_j (α_t x_j − z) / β_t² = (α_t x̄ − z) / β_t²,    x̄ = Σ_j w_j x_j

``x̄ = E[x | z_t = z]`` is the posterior mean of the data point behind ``z``. The sum over the
whole data set is exact; the paper's Monte Carlo estimator takes it over a mini-batch of the
data instead (the caller picks the batch: :mod:`.ode`). With ``∂x̄/∂z = (α_t/β_t²) Cov_w(x)``:

    (D6)  ∇_z · s = −d / β_t² + α_t² V / β_t⁴,     V = Σ_j w_j ‖x_j − x̄‖²

(``α_t² V = Σ_j w_j ‖α_t x_j − z‖² − ‖Σ_j w_j (α_t x_j − z)‖²``). Shapes: ``z`` [n, d], ``x`` [m, d].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from consumers.density.schedule import Schedule


def weights(z: Tensor, t: float, x: Tensor, schedule: Schedule) -> Tensor:
    """(D3): [n, d], [m, d] → [n, m], rows summing to 1.

    The logits drop the ``‖z‖²`` term, the same for every ``j``: ``(α z·x_j − ½ α² ‖x_j‖²) / β²``
    (one fused multiply-add); the softmax is ``exp(l − logsumexp(l))``, computed after subtracting the
    row's max, so no weight over- or underflows to NaN even at ``β_0² = ε``."""
    import torch

    a, b2 = schedule.alpha(t), schedule.beta2(t)
    bias = (-0.5 * a * a / b2) * x.square().sum(1)
    return torch.softmax(torch.addmm(bias, z, x.T, alpha=a / b2), dim=1)


def posterior_stats(z: Tensor, t: float, x: Tensor, schedule: Schedule) -> tuple[Tensor, Tensor]:
    """(x̄ [n, d], V [n]): the weighted mean of the data and its spread ``Σ_j w_j ‖x_j − x̄‖²``.

    Everything is taken about the batch's mean ``c`` (``‖z − α x_j‖ = ‖(z − α c) − α (x_j − c)‖``), so
    data far from the origin loses no precision; both weighted moments come from one product."""
    import torch

    centre = x.mean(0)
    xc = x - centre
    w = weights(z - schedule.alpha(t) * centre, t, xc, schedule)
    moments = w @ torch.cat([xc, xc.square().sum(1, keepdim=True)], dim=1)
    mean_c, second = moments[:, :-1], moments[:, -1]
    return mean_c + centre, (second - mean_c.square().sum(1)).clamp_min(0.0)


def score(z: Tensor, t: float, x: Tensor, schedule: Schedule) -> Tensor:
    """(D4): s(z, t) [n, d]."""
    mean, _ = posterior_stats(z, t, x, schedule)
    return (schedule.alpha(t) * mean - z) / schedule.beta2(t)


def score_divergence(z: Tensor, t: float, x: Tensor, schedule: Schedule) -> Tensor:
    """(D6): ∇_z · s(z, t) [n]."""
    _, spread = posterior_stats(z, t, x, schedule)
    a, b2 = schedule.alpha(t), schedule.beta2(t)
    return -z.shape[1] / b2 + a * a * spread / (b2 * b2)
