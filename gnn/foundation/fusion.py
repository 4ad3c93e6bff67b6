"""Aspect Gating Fusion (S&R Multi-Domain Foundation, Gong et al., CIKM 2023, arXiv 2309.08939, §3.2).

The aspects ``e_1..e_A`` of one side (ID, text, sparse; each ``[B, d]``) are fused by a gate::

    α = softmax(W_g · g)            α: [B, A]       (eq. 2)
    e = Σ_a α_a · e_a                e: [B, d]       (eq. 3)

The paper compares three gate inputs ``g`` and finds the domain embedding best:

- ``mean``: the aspects' mean ``(1/A) Σ_a e_a``;
- ``cls``: the text aspect, i.e. the projected [CLS]/pooled output of the frozen language model;
- ``domain``: a learned embedding of the sample's domain.

``gate="concat"`` is the "no gating" ablation: ``e = W_c [e_1; …; e_A]``.
"""

from __future__ import annotations

import torch
from torch import nn

from gnn.foundation.inputs import TEXT_ASPECT

GATES = ("domain", "mean", "cls", "concat")


class AspectGatingFusion(nn.Module):
    """aspects [B, A, d] (+ domain [B]) → fused [B, d]; ``last_alpha`` keeps α for inspection."""

    def __init__(self, dim: int, n_aspects: int, n_domains: int, gate: str = "domain") -> None:
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}; choose one of {GATES}")
        self.gate = gate
        self.domain_emb = nn.Embedding(n_domains, dim)
        if gate == "concat":
            self.proj = nn.Linear(n_aspects * dim, dim)
        else:
            self.w_g = nn.Linear(dim, n_aspects)
        self.last_alpha: torch.Tensor | None = None

    def gate_input(self, aspects: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """g: [B, d]."""
        if self.gate == "mean":
            return aspects.mean(1)
        if self.gate == "cls":
            return aspects[:, TEXT_ASPECT]
        g: torch.Tensor = self.domain_emb(domain)
        return g

    def forward(self, aspects: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        if self.gate == "concat":
            return self.proj(aspects.flatten(1))  # type: ignore[no-any-return]
        alpha = torch.softmax(self.w_g(self.gate_input(aspects, domain)), dim=-1)  # eq. 2
        self.last_alpha = alpha.detach()
        return (alpha.unsqueeze(-1) * aspects).sum(1)  # eq. 3

    def reset_domains(self, rows: list[int]) -> None:
        """Set the embeddings of domains ``rows`` to the mean of the others (a cold-start domain that
        pre-training never saw starts from the average domain, not from noise)."""
        w = self.domain_emb.weight.data
        keep = [i for i in range(w.shape[0]) if i not in rows]
        if keep:
            w[rows] = w[keep].mean(0, keepdim=True)
