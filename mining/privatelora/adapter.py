"""PrivateLoRA's adapter and the plain-LoRA baseline, attached to a frozen BERT-style encoder.

PrivateLoRA (Wang et al., "PrivateLoRA for Efficient Privacy Preserving LLM", arXiv 2311.14030):
an adapted linear layer with frozen pretrained weight W₀ ∈ ℝ^{d_out×d_in} computes

    h = W₀·x + B·(M·(A·x)),        ΔW = B·M·A

with A ∈ ℝ^{r×d_in} and B ∈ ℝ^{d_out×r} random and frozen (initialised like ``nn.Linear``,
uniform in ±1/√fan_in, as the official code does) and M ∈ ℝ^{r×r} zero-initialised, the only
trainable part — so ΔW = 0 and the model equals the pretrained one at step 0, while
∂L/∂M = Σ_tokens (Bᵀ·∂L/∂h)·(A·x)ᵀ ≠ 0, so M learns from the first step.

Placement (the paper's split): A and B live in the cloud next to W₀; M lives on the device. Per
adapted projection and token the cloud sends z = A·x (r values) and receives u = M·z (r values);
in the backward pass it sends ∂L/∂u and receives ∂L/∂z = Mᵀ·∂L/∂u. M, its gradient, the labels
and the head never leave the device; only r-dimensional activations cross the network.

LoRA (Hu et al., arXiv 2106.09685), the baseline at the same rank r:

    h = W₀·x + (α/r)·B·A·x,        A ~ Kaiming-uniform, B = 0, both trainable

(r·(d_in + d_out) trainable values per projection against PrivateLoRA's r²). Both are members of
mokg's adapter family (:mod:`mining.tuning.lora`: ``privatelora`` is registered here, ``lora`` is
the family's one ``LoRALinear``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mining.tuning.lora import Adapter, AdapterSpec, build, register, uniform_like_linear

Remote = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AdapterConfig:
    """Which linear layers get an adapter, and its shape.

    Args:
        method: ``privatelora``, ``lora`` or ``none`` (frozen backbone, head only).
        rank: r, the same budget for both methods.
        targets: attribute names of the adapted projections in each self-attention block.
        lora_alpha: LoRA's α (scale α/r); PrivateLoRA has no scale, as in the paper's code.
        seed: seed of the frozen A, B (PrivateLoRA) or of A (LoRA).
    """

    method: str = "privatelora"
    rank: int = 16
    targets: tuple[str, ...] = ("query", "value")
    lora_alpha: float = 16.0
    seed: int = 0

    def spec(self) -> AdapterSpec:
        """This configuration as a member of the adapter family."""
        return AdapterSpec(self.method, self.rank, self.lora_alpha, self.targets, seed=self.seed)


def projections(d_in: int, d_out: int, rank: int, seed: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen (A, B) of adapter number ``index``: reproducible from (seed, index) alone."""
    gen = torch.Generator().manual_seed(seed * 100_003 + index)
    return uniform_like_linear(rank, d_in, gen), uniform_like_linear(d_out, rank, gen)


class PrivateLoRALinear(Adapter):
    """``h = W₀x + B(M(Ax))``; with ``remote`` set, ``M(·)`` is computed elsewhere (the device).

    Args:
        base: the frozen pretrained linear layer (W₀, bias).
        rank: r.
        seed, index: reproduce A and B (see :func:`projections`).
    """

    A: torch.Tensor
    B: torch.Tensor

    def __init__(self, base: nn.Linear, rank: int, seed: int, index: int) -> None:
        super().__init__()
        self.base = base
        self.index = index
        a, b = projections(base.in_features, base.out_features, rank, seed, index)
        self.register_buffer("A", a)
        self.register_buffer("B", b)
        self.M = nn.Parameter(torch.zeros(rank, rank))
        self.remote: Remote | None = None  # x ↦ ΔW·x computed across the network (cloud side)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = B·M·A (d_out × d_in)."""
        return self.B @ self.M @ self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(x)
        if self.remote is not None:
            return out + self.remote(x)
        return out + ((x @ self.A.T) @ self.M.T) @ self.B.T


@register("privatelora")
def _privatelora(base: nn.Linear, spec: AdapterSpec, index: int) -> Adapter:
    if spec.seed is None:
        raise ValueError("PrivateLoRA needs a seed: cloud and device rebuild A and B from it")
    return PrivateLoRALinear(base, spec.rank, spec.seed, index)


def attach(encoder: nn.Module, cfg: AdapterConfig) -> list[nn.Module]:
    """Freeze every parameter of a BERT-style ``encoder`` and wrap its target projections.

    Returns the adapters in a fixed order (layer by layer, targets in config order): that order
    is the adapter index shared by cloud and device.
    """
    for p in encoder.parameters():
        p.requires_grad_(False)
    if cfg.method == "none":
        return []
    if cfg.method not in ("privatelora", "lora"):
        raise ValueError(f"unknown adapter method {cfg.method!r}; choose privatelora, lora or none")
    spec = cfg.spec()
    adapters: list[nn.Module] = []
    for layer in encoder.encoder.layer:  # type: ignore[union-attr]
        attention = layer.attention.self
        for name in cfg.targets:
            new = build(spec, getattr(attention, name), index=len(adapters))
            setattr(attention, name, new)
            adapters.append(new)
    return adapters


def trainable(module: nn.Module) -> list[nn.Parameter]:
    """The parameters that require gradients."""
    return [p for p in module.parameters() if p.requires_grad]
