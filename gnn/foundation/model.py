"""The S&R Multi-Domain Foundation model and the rankers beside it, behind one interface.

Gong et al., "An Unified Search and Recommendation Foundation Model for Cold-Start Scenario",
CIKM 2023, arXiv 2309.08939: aspects (:mod:`~gnn.foundation.inputs`) → Aspect Gating Fusion per
side (:mod:`~gnn.foundation.fusion`) → Domain Adaptive Multi-Task (:mod:`~gnn.foundation.adaptation`).

Every ranker maps sample indices ``(req, item, domain, scenario)`` ([B] each) to ``(logits [B],
auxiliary loss)``; the baselines (:mod:`gnn.foundation.baselines`) read the concatenated aspects
``[B, 6d]`` of the same :class:`~gnn.foundation.inputs.AspectInputs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from gnn.foundation.adaptation import DomainAdaptiveMultiTask
from gnn.foundation.baselines import make_baseline
from gnn.foundation.baselines.common import BaselineConfig
from gnn.foundation.features import Encoded
from gnn.foundation.fusion import GATES, AspectGatingFusion
from gnn.foundation.inputs import N_ASPECTS, AspectInputs
from graph.errors import InputError

BASELINE_NAMES = ("shared_bottom", "mmoe", "ple", "star")


@dataclass(frozen=True)
class FoundationConfig:
    """The model's switches. ``gate``: domain|mean|cls, or ``concat`` (no gating); ``use_text``:
    False drops the text aspect; ``adapt``: False = one shared map and no alignment penalty."""

    dim: int = 32
    shared_dim: int = 64
    gate: str = "domain"
    use_text: bool = True
    adapt: bool = True
    align_weight: float = 0.1  # β of eq. 6
    n_experts: int = 4
    expert_dim: int = 64
    tower_dim: int = 32
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise InputError(f"unknown gate {self.gate!r}; choose one of {', '.join(GATES)}")
        if min(self.dim, self.shared_dim, self.n_experts, self.expert_dim, self.tower_dim) < 1:
            raise InputError("every width of FoundationConfig must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SRFoundation(nn.Module):
    """The foundation model (module doc); ``freeze_encoding()`` is the cold-start fine-tune switch."""

    def __init__(self, enc: Encoded, config: FoundationConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inputs = AspectInputs(enc, c.dim, use_text=c.use_text)
        n_dom, n_scen = len(enc.domains), len(enc.scenarios)
        self.fuse_req = AspectGatingFusion(c.dim, N_ASPECTS, n_dom, c.gate)
        self.fuse_item = AspectGatingFusion(c.dim, N_ASPECTS, n_dom, c.gate)
        self.dam = DomainAdaptiveMultiTask(
            3 * c.dim,
            c.shared_dim,
            n_dom,
            n_scen,
            adapt=c.adapt,
            n_experts=c.n_experts,
            expert_dim=c.expert_dim,
            tower_dim=c.tower_dim,
            dropout=c.dropout,
        )

    def fused(self, req: Tensor, item: Tensor, domain: Tensor) -> tuple[Tensor, Tensor]:
        """(request vectors [B, d], item vectors [B, d]): the representations written back."""
        r, i = self.inputs(req, item)
        return self.fuse_req(r, domain), self.fuse_item(i, domain)

    def forward(self, req: Tensor, item: Tensor, domain: Tensor, scenario: Tensor) -> tuple[Tensor, Tensor]:
        r, i = self.fused(req, item, domain)
        logits, penalty = self.dam(torch.cat([r, i, r * i], 1), domain, scenario)
        return logits, self.config.align_weight * penalty

    def freeze_encoding(self) -> None:
        """Freeze the text projection, the sparse-token table and both fusions' gates (pre-trained
        parts); the ID rows, domain embeddings and maps, experts and towers keep training."""
        frozen: list[nn.Module] = [*self.inputs.frozen_parts()]
        for fuse in (self.fuse_req, self.fuse_item):
            frozen += [m for name, m in fuse.named_children() if name != "domain_emb"]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def reset_domains(self, rows: list[int]) -> None:
        """Domains ``rows`` (unseen in pre-training) start from the mean of the trained ones."""
        self.fuse_req.reset_domains(rows)
        self.fuse_item.reset_domains(rows)
        self.dam.reset_domains(rows)


class BaselineRanker(nn.Module):
    """A baseline of :mod:`gnn.foundation.baselines` over the same aspects, concatenated ([B, 6d])."""

    def __init__(self, enc: Encoded, name: str, dim: int = 32, config: BaselineConfig | None = None) -> None:
        super().__init__()
        self.inputs = AspectInputs(enc, dim)
        self.net = make_baseline(name, 2 * N_ASPECTS * dim, len(enc.scenarios), config or BaselineConfig())

    def forward(self, req: Tensor, item: Tensor, domain: Tensor, scenario: Tensor) -> tuple[Tensor, Tensor]:
        r, i = self.inputs(req, item)
        logits = self.net(torch.cat([r.flatten(1), i.flatten(1)], 1), scenario)
        return logits, logits.new_zeros(())


ABLATIONS: dict[str, dict[str, Any]] = {
    "no text features": {"use_text": False},
    "no gating (concat)": {"gate": "concat"},
    "no domain adaptation": {"adapt": False},
    "gate = aspect mean": {"gate": "mean"},
    "gate = [CLS]": {"gate": "cls"},
}


def make_ranker(enc: Encoded, method: str, config: FoundationConfig | None = None) -> nn.Module:
    """``foundation`` (with ``config``) or a baseline name."""
    if method == "foundation":
        return SRFoundation(enc, config or FoundationConfig())
    if method in BASELINE_NAMES:
        return BaselineRanker(enc, method, (config or FoundationConfig()).dim)
    raise InputError(f"unknown method {method!r}; choose foundation or one of {', '.join(BASELINE_NAMES)}")


def ablation_config(name: str, base: FoundationConfig | None = None) -> FoundationConfig:
    if name not in ABLATIONS:
        raise InputError(f"unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}")
    return replace(base or FoundationConfig(), **ABLATIONS[name])
