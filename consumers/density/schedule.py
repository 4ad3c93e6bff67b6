"""The noise schedule (D1)–(D2) of the training-free diffusion model (Liu et al., "Diffusion-Model-
Assisted Supervised Learning of Generative Models for Density Estimation", arXiv:2310.14458):

    α_t = 1 − (1−ε) t,     β_t² = ε + (1−ε) t,                     t ∈ [0, 1]
    f(t) = d log α_t / dt = −(1−ε) / α_t
    g²(t) = dβ_t²/dt − 2 f(t) β_t² = (1−ε) (1 + 2 β_t² / α_t)

so the SDE ``dz = f z dt + g dW`` started at a point ``x`` has the marginal ``N(α_t x, β_t² I)``
(its mean solves ``m' = f m``, its variance ``v' = 2 f v + g²``). At ``t = 0`` that is
``N(x, ε I)``; at ``t = 1`` it is ``N(ε x, I)`` ≈ ``N(0, I)``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """(D1): ``ε`` is both the noise left at ``t = 0`` and the signal left at ``t = 1``."""

    eps: float = 1e-4

    def alpha(self, t: float) -> float:
        return 1.0 - (1.0 - self.eps) * t

    def beta2(self, t: float) -> float:
        return self.eps + (1.0 - self.eps) * t

    def dalpha(self, t: float) -> float:
        """dα_t/dt (constant)."""
        return -(1.0 - self.eps)

    def dbeta2(self, t: float) -> float:
        """dβ_t²/dt (constant)."""
        return 1.0 - self.eps

    def drift(self, t: float) -> float:
        """f(t) = d log α_t / dt."""
        return self.dalpha(t) / self.alpha(t)

    def diffusion2(self, t: float) -> float:
        """g²(t) = dβ_t²/dt − 2 f(t) β_t²."""
        return self.dbeta2(t) - 2.0 * self.drift(t) * self.beta2(t)
