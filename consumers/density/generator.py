"""The supervised generator (D8) (Liu et al., "Diffusion-Model-Assisted Supervised Learning of
Generative Models for Density Estimation", arXiv:2310.14458).

The ODE (D5) labels noise ``z₁ ~ N(0, I)`` with its sample ``z₀``; a plain fully connected network
learns the map by regression, so a new sample is one forward pass:

    (D8)  G(z) = μ₀ + σ₀ ⊙ MLP((z − μ₁) / σ₁),    min  mean ‖MLP((z₁ − μ₁)/σ₁) − (z₀ − μ₀)/σ₀‖²

with ``μ, σ`` the per-coordinate mean and standard deviation of the pairs' inputs (₁) and
outputs (₀), and ``MLP`` ``depth`` tanh hidden layers of ``width`` units, trained with Adam.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from graph.progress import StageProgress


class MLPGenerator(nn.Module):
    """(D8): noise [n, d] → samples [n, d], with the standardisation of its training pairs."""

    in_mean: Tensor
    in_std: Tensor
    out_mean: Tensor
    out_std: Tensor

    def __init__(self, dim: int, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.Tanh()]
            size = width
        layers.append(nn.Linear(size, dim))
        self.net = nn.Sequential(*layers)
        for name in ("in_mean", "in_std", "out_mean", "out_std"):
            self.register_buffer(name, torch.zeros(dim) if "mean" in name else torch.ones(dim))

    def standardise(self, noise: Tensor, samples: Tensor) -> None:
        """Store μ₁, σ₁, μ₀, σ₀ of the pairs."""
        self.in_mean, self.in_std = noise.mean(0), noise.std(0).clamp_min(1e-12)
        self.out_mean, self.out_std = samples.mean(0), samples.std(0).clamp_min(1e-12)

    def forward(self, noise: Tensor) -> Tensor:
        out: Tensor = self.net((noise - self.in_mean) / self.in_std)
        return out * self.out_std + self.out_mean

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` samples from ``n`` standard normal draws seeded by ``seed`` → [n, d] (on the CPU)."""
        noise = standard_noise(n, self.in_mean.shape[0], seed).to(self.in_mean)
        with torch.inference_mode():
            out: Tensor = self(noise)
        return out.cpu()


def standard_noise(n: int, dim: int, seed: int) -> Tensor:
    """``z₁ ~ N(0, I)``: [n, dim] float32 on the CPU, from a generator seeded by ``seed``."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def fit_generator(
    noise: Tensor,
    samples: Tensor,
    *,
    width: int = 64,
    depth: int = 2,
    epochs: int = 300,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    progress: StageProgress | None = None,
) -> tuple[MLPGenerator, list[float]]:
    """(D8) on the pairs (noise [n, d], samples [n, d]): the generator and its mean loss per epoch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPGenerator(noise.shape[1], width, depth).to(noise)
    model.standardise(noise, samples)
    inputs = (noise - model.in_mean) / model.in_std
    targets = (samples - model.out_mean) / model.out_std
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    tick: Callable[[], None] | None = progress("generator epochs", epochs) if progress else None
    losses = []
    for _ in range(epochs):
        total = 0.0
        for rows in torch.split(torch.randperm(len(noise), generator=order), batch_size):
            rows = rows.to(noise.device)
            loss = (model.net(inputs[rows]) - targets[rows]).square().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        losses.append(total / len(noise))
        if tick is not None:
            tick()
    return model.eval(), losses
