"""The 2-D toy densities of the flow and diffusion literature, drawn with a seeded numpy generator.

They follow the definitions popularised by FFJORD (Grathwohl et al., ICLR 2019, arXiv:1810.01367)
and its successors, written here from those definitions; ``rng`` is a ``numpy.random.Generator``
and every function returns ``float64 [n, 2]``:

- ``moons``: two interleaved half circles ``(cos u, sin u)`` and ``(1 − cos u, ½ − sin u)``,
  ``u ~ U[0, π]``, plus ``N(0, 0.1²)`` noise;
- ``circles``: concentric circles of radius 1 and ½, plus ``N(0, 0.08²)`` noise;
- ``8gaussians``: ``N(c_k, 0.5²I)`` with centres ``c_k = 4 (cos kπ/4, sin kπ/4)``, equal weights;
- ``pinwheel``: 5 arms; a point ``(r, s)`` with ``r ~ N(1, 0.3²)``, ``s ~ N(0, 0.1²)`` is rotated by
  ``2πk/5 + 0.25 e^r`` (arm ``k`` uniform), then doubled;
- ``checkerboard``: uniform on the dark squares of a 4×4 board of side-2 squares on ``[−4, 4]²``;
- ``swissroll``: ``(t cos t, t sin t) / 5`` with ``t = 1.5π (1 + 2u)``, ``u ~ U[0, 1]``, plus
  ``N(0, 1)`` noise before the division;
- ``2spirals``: ``θ (−cos θ, sin θ) + U[0, ½)²`` with ``θ = 3π √u``, and its point reflection,
  divided by 3, plus ``N(0, 0.1²)`` noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

Array = NDArray[np.float64]


def _halves(n: int, rng: Generator) -> Array:
    """0/1 labels of two equal halves (the first ``ceil(n/2)`` are 0), shuffled."""
    return rng.permutation(np.arange(n) % 2).astype(np.float64)


def moons(n: int, rng: Generator) -> Array:
    u = rng.uniform(0.0, np.pi, n)
    lower = _halves(n, rng)
    x = np.where(lower == 1, 1.0 - np.cos(u), np.cos(u))
    y = np.where(lower == 1, 0.5 - np.sin(u), np.sin(u))
    out: Array = np.stack([x, y], axis=1) + rng.normal(0.0, 0.1, (n, 2))
    return out


def circles(n: int, rng: Generator) -> Array:
    u = rng.uniform(0.0, 2 * np.pi, n)
    radius = 1.0 - 0.5 * _halves(n, rng)
    ring = radius[:, None] * np.stack([np.cos(u), np.sin(u)], axis=1)
    out: Array = ring + rng.normal(0.0, 0.08, (n, 2))
    return out


def eight_gaussians(n: int, rng: Generator) -> Array:
    angle = rng.integers(0, 8, n) * np.pi / 4
    centres = 4.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + rng.normal(0.0, 0.5, (n, 2))


def pinwheel(n: int, rng: Generator) -> Array:
    r = rng.normal(1.0, 0.3, n)
    s = rng.normal(0.0, 0.1, n)
    angle = 2 * np.pi * rng.integers(0, 5, n) / 5 + 0.25 * np.exp(r)
    cos, sin = np.cos(angle), np.sin(angle)
    return 2.0 * np.stack([cos * r - sin * s, sin * r + cos * s], axis=1)


def checkerboard(n: int, rng: Generator) -> Array:
    x = rng.uniform(-2.0, 2.0, n)
    parity = np.floor(x) % 2  # the row must share the column's parity: (col + row) even
    row = 2 * rng.integers(0, 2, n) - 2 + parity  # {-2, 0} or {-1, 1}
    y = row + rng.uniform(0.0, 1.0, n)
    return 2.0 * np.stack([x, y], axis=1)


def swissroll(n: int, rng: Generator) -> Array:
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(0.0, 1.0, n))
    roll = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.normal(0.0, 1.0, (n, 2))
    return roll / 5.0


def two_spirals(n: int, rng: Generator) -> Array:
    theta = 3 * np.pi * np.sqrt(rng.uniform(0.0, 1.0, n))
    arm = theta[:, None] * np.stack([-np.cos(theta), np.sin(theta)], axis=1) + rng.uniform(0, 0.5, (n, 2))
    sign = 1.0 - 2.0 * _halves(n, rng)  # +1 / −1: the second spiral is the point reflection
    out: Array = sign[:, None] * arm / 3.0 + rng.normal(0.0, 0.1, (n, 2))
    return out


TOY_2D: dict[str, Callable[[int, Generator], Array]] = {
    "moons": moons,
    "circles": circles,
    "8gaussians": eight_gaussians,
    "pinwheel": pinwheel,
    "checkerboard": checkerboard,
    "swissroll": swissroll,
    "2spirals": two_spirals,
}
