"""MultiLoRA: horizontal LoRA for multi-task adaptation.

Paper: Wang et al., "MultiLoRA: Democratizing LoRA for Better Multi-Task Learning", arXiv 2311.11501.

n parallel LoRA modules per adapted linear layer, each with a learnable scaling factor:

    h = W₀x + b + Σᵢ₌₁ⁿ sᵢ ⊙ (α/r) · Bᵢ Aᵢ x,      ΔW = Σᵢ (α/r) · diag(sᵢ) · Bᵢ Aᵢ

The paper's changed initialisation: Aᵢ and Bᵢ are both Kaiming-uniform (B is *not* zero) and the
scales sᵢ = 0, so ΔW = 0 at step 0 (the model starts as the base model) and at step 0 only the
scales receive gradients (∂h/∂Aᵢ and ∂h/∂Bᵢ carry a factor sᵢ = 0). ``scale="module"`` gives one
scalar sᵢ per module (the paper); ``scale="channel"`` one per output channel, sᵢ ∈ ℝ^{d_out}
(community code). The trainable count is n·r·(d_in + d_out) + n (or n·d_out): at n·r equal to a
LoRA's rank the extra over LoRA is only the scales. Merges into W₀ like LoRA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mining.tuning.lora import Adapter, AdapterSpec, register

Scale = Literal["module", "channel"]


@dataclass(frozen=True)
class MultiLoraConfig:
    """Args:
    n: parallel LoRA modules per adapted layer.
    r: rank of each module.
    alpha: the scale numerator α (each module's update is scaled by α/r).
    scale: one learnable scale per module (paper) or per output channel.
    targets: suffixes of the ``nn.Linear`` module names to adapt.
    """

    n: int = 4
    r: int = 2
    alpha: float = 4.0
    scale: Scale = "module"
    targets: tuple[str, ...] = ("query", "value")


class MultiLoRALinear(Adapter):
    """h = W₀x + b + Σᵢ sᵢ ⊙ (α/r)·Bᵢ·Aᵢ·x, with Aᵢ, Bᵢ Kaiming-uniform and sᵢ = 0 (module doc)."""

    def __init__(
        self, base: nn.Linear, n: int = 4, r: int = 2, alpha: float = 4.0, scale: Scale = "module"
    ) -> None:
        super().__init__()
        self.base, self.n, self.r, self.scaling = base, n, r, alpha / r
        for p in base.parameters():
            p.requires_grad = False
        self.lora_A = nn.Parameter(torch.empty(n, r, base.in_features))
        self.lora_B = nn.Parameter(torch.empty(n, base.out_features, r))
        for i in range(n):
            nn.init.kaiming_uniform_(self.lora_A.data[i], a=math.sqrt(5))
            nn.init.kaiming_uniform_(self.lora_B.data[i], a=math.sqrt(5))
        width = 1 if scale == "module" else base.out_features
        self.scales = nn.Parameter(torch.zeros(n, width))

    def delta_weight(self) -> torch.Tensor:
        # Σᵢ diag(sᵢ)·(α/r)·Bᵢ·Aᵢ  →  (d_out, d_in)
        scaled_b = self.lora_B * self.scales.unsqueeze(-1)  # (n, d_out, r) · (n, d_out|1, 1)
        return self.scaling * torch.einsum("nor,nri->oi", scaled_b, self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = torch.einsum("...i,nri->...nr", x, self.lora_A)  # (..., n, r)
        up = torch.einsum("...nr,nor->...no", low, self.lora_B)  # (..., n, d_out)
        out: torch.Tensor = self.base(x) + self.scaling * (up * self.scales).sum(-2)
        return out


@register("multilora")
def _multilora(base: nn.Linear, spec: AdapterSpec, index: int) -> Adapter:
    if spec.scale not in ("module", "channel"):
        raise ValueError(f"MultiLoRA scale must be module or channel, not {spec.scale!r}")
    return MultiLoRALinear(base, spec.n, spec.rank, spec.alpha, spec.scale)  # type: ignore[arg-type]
