"""Domain Adaptive Multi-Task (S&R Multi-Domain Foundation, Gong et al., CIKM 2023, arXiv 2309.08939, §3.3).

The fused request and item vectors ``r, i`` ([B, d]) of a sample from domain ``k`` and scenario
``s`` (a (domain, task) pair: search and recommendation scenarios train jointly) go through:

- a domain-specific linear map into one shared space, ``h = ReLU(A_k [r; i; r ⊙ i] + b_k)`` ([B, H])
  with ``A_k = A + Δ_k``, ``b_k = b + δ_k``: a shared map plus a per-domain correction that starts
  at zero, so a domain with few samples stays near the shared map (our parameterisation; the
  paper states per-domain maps). The "no domain adaptation" ablation uses ``A, b`` for every domain;
- an alignment penalty that pulls the domains' distributions of ``h`` together. The paper states
  a distribution distance between domains; we use the squared maximum mean discrepancy with a
  Gaussian kernel (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, eq. 3) between each
  domain's rows and the rest of the batch, averaged over the domains in the batch;
- MMoE (Ma et al., KDD 2018) with one gate and one tower per scenario: ``ŷ = tower_s(Σ_e g_s,e f_e(h))``.

Loss (eq. 6): ``Σ BCE(ŷ, y) + β · penalty``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnn.foundation.baselines.common import ScenarioTowers
from gnn.foundation.baselines.mmoe import MMoELayer

MMD_SAMPLE = 512  # rows of the batch in the penalty (it is O(n²))
MIN_ROWS = 8  # a domain with fewer rows in the batch is left out of the penalty


def gaussian_kernel(x: Tensor) -> Tensor:
    """Sum of Gaussian kernels at 3 bandwidths around the median squared distance: [n, H] → [n, n]."""
    d2 = torch.cdist(x, x).pow(2)
    scale = d2.detach().median().clamp(min=1e-6)
    return sum(torch.exp(-d2 / (scale * f)) for f in (0.5, 1.0, 2.0))  # type: ignore[return-value]


def alignment_penalty(h: Tensor, domain: Tensor) -> Tensor:
    """Mean over the batch's domains of the biased MMD² between the domain's rows of ``h`` and the
    other domains' rows (on the first ``MMD_SAMPLE`` rows of the shuffled batch; one kernel matrix):

        MMD²(P, Q) = E k(p, p') + E k(q, q') − 2 E k(p, q)
    """
    h, domain = h[:MMD_SAMPLE], domain[:MMD_SAMPLE]
    k = gaussian_kernel(h)
    terms = []
    for d in torch.unique(domain):
        own = (domain == d).to(h.dtype)
        rest = 1.0 - own
        n_own, n_rest = own.sum(), rest.sum()
        if n_own < MIN_ROWS or n_rest < MIN_ROWS:
            continue
        terms.append(
            own @ k @ own / n_own**2 + rest @ k @ rest / n_rest**2 - 2 * own @ k @ rest / (n_own * n_rest)
        )
    return torch.stack(terms).mean() if terms else h.new_zeros(())


class DomainAdaptiveMultiTask(nn.Module):
    """[r; i; r ⊙ i] [B, 3d], domain [B], scenario [B] → (logits [B], penalty scalar)."""

    def __init__(
        self,
        in_dim: int,
        shared_dim: int,
        n_domains: int,
        n_scenarios: int,
        *,
        adapt: bool = True,
        n_experts: int = 4,
        expert_dim: int = 64,
        tower_dim: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.adapt = adapt
        self.map = nn.Linear(in_dim, shared_dim)  # A, b
        self.delta = nn.Parameter(torch.zeros(n_domains if adapt else 0, in_dim, shared_dim))  # Δ_k
        self.delta_bias = nn.Parameter(torch.zeros(n_domains if adapt else 0, shared_dim))  # δ_k
        self.mmoe = MMoELayer(shared_dim, n_experts, [2 * expert_dim, expert_dim], n_scenarios, dropout)
        self.towers = ScenarioTowers(expert_dim, n_scenarios, tower_dim, dropout)

    def shared(self, x: Tensor, domain: Tensor) -> Tensor:
        """h = ReLU((A + Δ_k) x + b + δ_k): [B, H]."""
        h: Tensor = self.map(x)
        if self.adapt:
            parts = []
            for k in torch.unique(domain).tolist():  # one matmul per domain in the batch
                rows = torch.nonzero(domain == k).squeeze(1)
                parts.append((rows, x[rows] @ self.delta[k] + self.delta_bias[k]))
            correction = torch.zeros_like(h)
            for rows, part in parts:
                correction = correction.index_add(0, rows, part)
            h = h + correction
        return torch.relu(h)

    def reset_domains(self, rows: list[int]) -> None:
        """Domains ``rows`` (unseen in pre-training) start at the shared map (Δ_k = 0)."""
        if self.adapt:
            self.delta.data[rows] = 0.0
            self.delta_bias.data[rows] = 0.0

    def forward(self, x: Tensor, domain: Tensor, scenario: Tensor) -> tuple[Tensor, Tensor]:
        h = self.shared(x, domain)
        mixed = self.mmoe(h, scenario)  # [B, expert_dim]
        penalty = alignment_penalty(h, domain) if self.adapt and self.training else h.new_zeros(())
        return self.towers(mixed, scenario), penalty
