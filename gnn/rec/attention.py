"""Prototype-enhanced attention of PEACE (Gao et al., WSDM 2024, arXiv 2312.01916). Equation
numbers E1–E8 are this package's (listed in :mod:`gnn.rec.peace`), not the paper's.

Each of a user's ``K`` interest vectors ``z_k`` attends over the ``C`` prototypes ``P`` and adds
the result, so a target domain can draw on the transferred cluster-level knowledge as much as the
interest needs (the paper's "adaptive" use of prototypes):

    α_{k,c} = softmax_c( (W_q z_k) · (W_k p_c) / √d )                                        (E5)
    z'_k   = z_k + W_o Σ_c α_{k,c} p_c                                                        (E6)

``W_o`` starts small (std 0.02), so an untrained block is close to the identity. The same
arithmetic in numpy is the online part of serving (:mod:`gnn.rec.serve`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PrototypeAttention(nn.Module):
    """Interests attend over prototypes (Eqs. E5–E6).

    Args:
        dim: embedding width ``d`` of interests and prototypes.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        nn.init.normal_(self.o.weight, std=0.02)
        self.scale = 1.0 / math.sqrt(dim)

    def weights(self, interests: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Eq. E5: ``[..., K, C]`` attention of each interest over the prototypes (rows sum to 1).

        Computed as ``z · (W_qᵀ W_k Pᵀ)``: the same product, re-associated so the ``d × d`` map is
        applied to the ``C`` prototypes instead of the ``B·K`` interests.
        """
        keys = self.q.weight.T @ self.k(prototypes).T  # [d, C]
        return torch.softmax(interests @ keys * self.scale, dim=-1)

    def forward(self, interests: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Eq. E6: ``interests`` ``[..., K, d]`` plus their attended prototype read-out
        (``α (P W_oᵀ)``, re-associated likewise)."""
        out: torch.Tensor = interests + self.weights(interests, prototypes) @ self.o(prototypes)
        return out
