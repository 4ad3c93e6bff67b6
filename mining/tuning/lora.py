"""LoRA (Hu et al., arXiv 2106.09685), the baseline adapter of mokg's tuning comparisons.

For a frozen linear layer h = W₀x + b (W₀ ∈ ℝ^{d_out×d_in}):

    h = W₀x + b + (α/r) · B A x,   A ∈ ℝ^{r×d_in} (Kaiming-uniform), B ∈ ℝ^{d_out×r} (zeros)

so ΔW = (α/r)·B·A = 0 at initialisation and the adapted model starts as the base model. Only A
and B train. :func:`inject` wraps the named ``nn.Linear`` modules of a model (e.g. MiniLM's
``query``/``value`` projections) with an adapter built by a factory (this class or
:class:`mining.tuning.multilora.MultiLoRALinear`); :func:`merge` folds ΔW back into W₀.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LoraConfig:
    """Args:
    r: rank of B·A.
    alpha: the scale numerator α (the update is scaled by α/r).
    targets: suffixes of the ``nn.Linear`` module names to adapt.
    """

    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")


class Adapter(nn.Module):
    """What every adapted linear layer offers: the frozen base, ΔW and a merged copy."""

    base: nn.Linear

    def delta_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W₀ + ΔW (for serving: no extra cost per call)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


class LoRALinear(Adapter):
    """h = W₀x + b + (α/r)·B·A·x with B = 0 at initialisation (see module doc)."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        self.base, self.r, self.scaling = base, r, alpha / r
        for p in base.parameters():
            p.requires_grad = False
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T
        return out


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def inject(model: nn.Module, targets: Sequence[str], factory: Callable[[nn.Linear], Adapter]) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with a target by ``factory(linear)``; freeze the
    rest of ``model``. Returns the adapted module names (raises if none matched)."""
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in targets)
    ]
    if not names:
        raise ValueError(f"no nn.Linear named like {list(targets)} in {type(model).__name__}")
    for p in model.parameters():
        p.requires_grad = False
    for name in names:
        parent, leaf = _parent(model, name)
        linear = getattr(parent, leaf)
        setattr(parent, leaf, factory(linear))
    return names


def adapters(model: nn.Module) -> dict[str, Adapter]:
    return {n: m for n, m in model.named_modules() if isinstance(m, Adapter)}


def merge(model: nn.Module) -> None:
    """Fold every adapter into its base layer (the model becomes a plain one again)."""
    for name, adapter in adapters(model).items():
        parent, leaf = _parent(model, name)
        setattr(parent, leaf, adapter.merged())


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
