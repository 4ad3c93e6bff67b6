"""LoRA (Hu et al., arXiv 2106.09685), the baseline adapter of mokg's tuning comparisons.

For a frozen linear layer h = W₀x + b (W₀ ∈ ℝ^{d_out×d_in}):

    h = W₀x + b + (α/r) · B A x,   A ∈ ℝ^{r×d_in} (Kaiming-uniform), B ∈ ℝ^{d_out×r} (zeros)

so ΔW = (α/r)·B·A = 0 at initialisation and the adapted model starts as the base model. Only A
and B train.

This module is the home of mokg's adapter family, PEFT-style: every adapted linear layer is an
:class:`Adapter` (frozen base, ΔW, a merged copy), each method registers a builder under its name
(``lora`` here, ``multilora`` in :mod:`mining.tuning.multilora`, ``privatelora`` in
:mod:`mining.privatelora.adapter`), and :func:`inject` wraps the named ``nn.Linear`` modules of a
model (e.g. MiniLM's ``query``/``value`` projections) with the adapter an :class:`AdapterSpec`
names; :func:`merge` folds ΔW back into W₀.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from graph.errors import InputError


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


@dataclass(frozen=True)
class AdapterSpec:
    """Which adapter wraps which layers (PEFT's ``LoraConfig`` in spirit).

    Args:
        method: a registered adapter (:data:`ADAPTERS`): ``lora``, ``multilora``, ``privatelora``.
        rank: r of each low-rank factor pair.
        alpha: the scale numerator α (updates scaled by α/r; PrivateLoRA has no scale).
        targets: suffixes of the ``nn.Linear`` module names to adapt.
        n: parallel modules per layer (MultiLoRA).
        scale: MultiLoRA's learnable scales, one per module or one per output channel.
        seed: draws the random factors of adapter number ``index`` from ``seed`` and ``index``
            alone (reproducible on two machines); ``None`` draws from torch's global generator.
    """

    method: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    n: int = 4
    scale: str = "module"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.rank < 1 or self.n < 1:
            raise InputError(f"adapter rank and n must be ≥ 1 (got rank={self.rank}, n={self.n})")

    def generator(self, index: int) -> torch.Generator | None:
        """The generator of adapter number ``index`` (``None``: torch's global one)."""
        return None if self.seed is None else torch.Generator().manual_seed(self.seed * 100_003 + index)


Builder = Callable[[nn.Linear, AdapterSpec, int], Adapter]
ADAPTERS: dict[str, Builder] = {}
# Modules that register adapters when imported (so build() finds them without the caller doing it).
_PROVIDERS = ("mining.tuning.multilora", "mining.privatelora.adapter")


def register(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder(base, spec, index)`` under ``name``."""

    def add(builder: Builder) -> Builder:
        ADAPTERS[name] = builder
        return builder

    return add


def build(spec: AdapterSpec, base: nn.Linear, index: int = 0) -> Adapter:
    """The adapter ``spec.method`` around ``base``; ``index`` numbers it within its model."""
    if spec.method not in ADAPTERS:
        for module in _PROVIDERS:
            importlib.import_module(module)
    if spec.method not in ADAPTERS:
        raise InputError(f"unknown adapter {spec.method!r}; choose one of {sorted(ADAPTERS)}")
    return ADAPTERS[spec.method](base, spec, index)


def uniform_like_linear(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """A ``rows × cols`` weight drawn like ``nn.Linear``'s default: U(±1/√cols)."""
    bound = 1.0 / math.sqrt(cols)
    return (torch.rand(rows, cols, generator=gen) * 2 - 1) * bound


class LoRALinear(Adapter):
    """h = W₀x + b + (α/r)·B·A·x with B = 0 at initialisation (see module doc).

    A is Kaiming-uniform (a = √5), i.e. U(±1/√d_in); with ``generator`` it is drawn from it.
    """

    def __init__(
        self, base: nn.Linear, r: int = 8, alpha: float = 16.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.base, self.r, self.scaling = base, r, alpha / r
        for p in base.parameters():
            p.requires_grad = False
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        if generator is None:
            self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        else:
            self.lora_A = nn.Parameter(uniform_like_linear(r, base.in_features, generator))

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T
        return out


@register("lora")
def _lora(base: nn.Linear, spec: AdapterSpec, index: int) -> Adapter:
    return LoRALinear(base, spec.rank, spec.alpha, spec.generator(index))


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def inject(model: nn.Module, spec: AdapterSpec) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with one of ``spec.targets`` by the adapter
    ``spec`` names, numbered in module order; freeze the rest of ``model``. Returns the adapted
    module names (raises if none matched)."""
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in spec.targets)
    ]
    if not names:
        raise ValueError(f"no nn.Linear named like {list(spec.targets)} in {type(model).__name__}")
    for p in model.parameters():
        p.requires_grad = False
    for index, name in enumerate(names):
        parent, leaf = _parent(model, name)
        setattr(parent, leaf, build(spec, getattr(parent, leaf), index))
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
