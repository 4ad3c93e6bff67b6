"""Normalizing flows from ``zuko``: MAF (Papamakarios et al., "Masked Autoregressive Flow for
Density Estimation", NeurIPS 2017) and NSF (Durkan et al., "Neural Spline Flows", NeurIPS 2019).

A flow is an invertible ``f`` onto a standard normal base, so by the change of variables

    log p(x) = log N(f(x); 0, I) + log |det ∂f(x)/∂x|,

with ``f`` a stack of ``transforms`` autoregressive layers (MADE conditioners with hidden widths
``hidden_features``): affine per feature for MAF, monotonic rational-quadratic splines with
``bins`` bins on ``[−5, 5]`` for NSF (standardise the data first). Fit by Adam on the mean negative
log-likelihood of the train split, evaluated on the valid split after every epoch; training stops
after ``patience`` epochs without improvement and keeps the best epoch's weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from consumers.density.baselines.base import Array, float_tensors, seeded_build
from graph.errors import InputError


@dataclass(frozen=True)
class FlowConfig:
    """kind: ``maf`` or ``nsf``; transforms: autoregressive layers; hidden_features: MADE widths;
    bins: spline bins (NSF); lr, batch_size, max_epochs, patience: Adam with early stopping on the
    valid NLL; eval_batch: rows per forward pass when scoring."""

    kind: str = "maf"
    transforms: int = 5
    hidden_features: tuple[int, ...] = (128, 128)
    bins: int = 8
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 10
    eval_batch: int = 8192

    def __post_init__(self) -> None:
        if self.kind not in ("maf", "nsf"):
            raise InputError(f"flow kind must be maf or nsf, got {self.kind!r}")


class Flow:
    """A MAF or NSF (``config.kind``) fit by maximum likelihood with early stopping."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self.name = self.config.kind
        self.fit_seconds = 0.0
        self.best_valid_nll = float("nan")
        self.epochs = 0
        self._flow: Any = None

    def _build(self, features: int) -> Any:
        import zuko

        c = self.config
        if c.kind == "maf":
            return zuko.flows.MAF(features, transforms=c.transforms, hidden_features=c.hidden_features)
        hidden = c.hidden_features
        return zuko.flows.NSF(features, transforms=c.transforms, hidden_features=hidden, bins=c.bins)

    def fit(self, train: Array, valid: Array, seed: int = 0) -> Self:
        import torch

        start = time.perf_counter()
        c = self.config
        x, v = float_tensors(train, valid)
        self._flow = seeded_build(seed, lambda: self._build(x.shape[1]))
        optimiser = torch.optim.Adam(self._flow.parameters(), lr=c.lr)
        generator = torch.Generator().manual_seed(seed)
        best, best_state, waited = float("inf"), copy.deepcopy(self._flow.state_dict()), 0
        for epoch in range(c.max_epochs):
            self._flow.train()
            for idx in torch.split(torch.randperm(len(x), generator=generator), c.batch_size):
                loss = -self._flow().log_prob(x[idx]).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            nll = float(-self._log_prob(v).mean())
            self.epochs = epoch + 1
            if nll < best:
                best, best_state, waited = nll, copy.deepcopy(self._flow.state_dict()), 0
            elif (waited := waited + 1) >= c.patience:
                break
        self._flow.load_state_dict(best_state)
        self.best_valid_nll = best
        self.fit_seconds = time.perf_counter() - start
        return self

    def _log_prob(self, x: Any) -> Any:
        import torch

        if self._flow is None:
            raise InputError("call fit(train, valid) before log_prob or sample")
        self._flow.eval()
        with torch.no_grad():
            return torch.cat([self._flow().log_prob(b) for b in x.split(self.config.eval_batch)])

    def log_prob(self, x: Array) -> Array:

        (rows,) = float_tensors(x)
        return np.asarray(self._log_prob(rows).numpy(), dtype=np.float64)

    def sample(self, n: int, seed: int = 0) -> Array:
        import torch

        if self._flow is None:
            raise InputError("call fit(train, valid) before log_prob or sample")
        self._flow.eval()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            out = self._flow().sample((n,))
        return np.asarray(out.numpy(), dtype=np.float64)
