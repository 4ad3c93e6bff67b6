"""STAR (X.-R. Sheng et al., "One Model to Serve All: Star Topology Adaptive Recommender for
Multi-Domain CTR Prediction", CIKM 2021, arXiv 2101.11427). Its domain ``p`` is our scenario.

Partitioned normalization (PN, §4.3): shared and per-domain scale and bias on domain statistics::

    z' = (γ ⊙ γ_p) ⊙ (z − μ_p) / sqrt(σ²_p + ε) + (β + β_p)                          (1)

Star-topology FCN (§4.2): every layer's weight is the element-wise product of the shared (centred)
weight and the domain's own, its bias the sum::

    W*_p = W_p ⊙ W,   b*_p = b_p + b,   out_p = φ(W*_p^T in_p + b*_p)                (2)

Auxiliary network (§4.4): a small MLP on the domain-indicator embedding and x; its logit is added::

    s_a = MLP_aux([e_p, x]),   ŷ = σ(s_m + s_a),  s_m the star FCN's output           (3)

PN statistics: the paper trains on single-domain mini-batches, so the batch statistics are the
domain's; here a batch may mix domains, so ``μ_p, σ²_p`` are the moments of domain ``p``'s samples in
the batch (the same thing for a single-domain batch), and each domain keeps its own running moments
for eval, as in the paper. A domain with a single sample in a batch normalises to ``β + β_p`` and
does not update its running moments. Domain weights start at ``W_p = 1, b_p = 0, γ_p = 1, β_p = 0``:
a new domain (:meth:`STAR.add_scenarios`) starts as the shared centre, with the pooled running moments.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from gnn.foundation.baselines.common import BaselineConfig, ScenarioModel, mlp, pick


def _grow(p: nn.Parameter, rows: Tensor) -> nn.Parameter:
    return nn.Parameter(torch.cat([p.data, rows.to(p.data)]))


class PartitionedNorm(nn.Module):
    """Eq. 1: z [B, F], domain [B] → [B, F]; ``gamma_d, beta_d`` [D, F] are the per-domain parts."""

    def __init__(self, n_features: int, n_domains: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gamma, self.beta = nn.Parameter(torch.ones(n_features)), nn.Parameter(torch.zeros(n_features))
        self.gamma_d = nn.Parameter(torch.ones(n_domains, n_features))
        self.beta_d = nn.Parameter(torch.zeros(n_domains, n_features))
        self.running_mean: Tensor
        self.running_var: Tensor
        self.register_buffer("running_mean", torch.zeros(n_domains, n_features))
        self.register_buffer("running_var", torch.ones(n_domains, n_features))

    def forward(self, z: Tensor, domain: Tensor) -> Tensor:
        if self.training:
            d, f = self.gamma_d.shape
            n = z.new_zeros(d, 1).index_add(0, domain, z.new_ones(len(domain), 1))  # [D, 1], no sync
            mean = z.new_zeros(d, f).index_add(0, domain, z) / n.clamp_min(1)
            var = z.new_zeros(d, f).index_add(0, domain, (z - mean[domain]) ** 2) / n.clamp_min(1)
            with torch.no_grad():  # per-domain moving moments (unbiased variance), for eval
                seen, m = n >= 2, self.momentum
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.copy_(
                    torch.where(seen, (1 - m) * self.running_mean + m * mean, self.running_mean)
                )
                self.running_var.copy_(
                    torch.where(seen, (1 - m) * self.running_var + m * unbiased, self.running_var)
                )
        else:
            mean, var = self.running_mean, self.running_var
        z_hat = (z - mean[domain]) / torch.sqrt(var[domain] + self.eps)
        return self.gamma * self.gamma_d[domain] * z_hat + self.beta + self.beta_d[domain]

    def add_domains(self, k: int) -> None:
        f = self.gamma.shape[0]
        self.gamma_d, self.beta_d = (
            _grow(self.gamma_d, torch.ones(k, f)),
            _grow(self.beta_d, torch.zeros(k, f)),
        )
        mu = self.running_mean.mean(0)  # pooled moments: mean of means, within + between variance
        var = self.running_var.mean(0) + ((self.running_mean - mu) ** 2).mean(0)
        self.running_mean = torch.cat([self.running_mean, mu.expand(k, -1)])
        self.running_var = torch.cat([self.running_var, var.expand(k, -1)])


class StarLinear(nn.Module):
    """One star-topology layer (eq. 2, without φ): h [B, in], domain [B] → [B, out]."""

    def __init__(self, in_dim: int, out_dim: int, n_domains: int) -> None:
        super().__init__()
        shared = nn.Linear(in_dim, out_dim)  # PyTorch's default initialisation for the centre
        self.weight = nn.Parameter(shared.weight.detach().T.clone())  # W [in, out]
        self.bias = nn.Parameter(shared.bias.detach().clone())  # b [out]
        self.weight_d = nn.Parameter(torch.ones(n_domains, in_dim, out_dim))  # W_p [D, in, out]
        self.bias_d = nn.Parameter(torch.zeros(n_domains, out_dim))  # b_p [D, out]

    def effective_weight(self, domain: int) -> Tensor:
        """W*_p = W_p ⊙ W [in, out] (eq. 2)."""
        return self.weight_d[domain] * self.weight

    def forward(self, h: Tensor, domain: Tensor) -> Tensor:
        every = torch.einsum("bi,dio->dbo", h, self.weight_d * self.weight)  # [D, B, out]
        return pick(every, domain) + self.bias + self.bias_d[domain]

    def add_domains(self, k: int) -> None:
        self.weight_d = _grow(self.weight_d, torch.ones(k, *self.weight.shape))
        self.bias_d = _grow(self.bias_d, torch.zeros(k, self.bias.shape[0]))


class STAR(ScenarioModel):
    """PN(x) → star FCN (ReLU between layers) → s_m, plus the auxiliary logit s_a (eq. 3) → [B]."""

    def __init__(self, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None) -> None:
        super().__init__(in_dim, n_scenarios, config)
        c = self.config
        self.norm = PartitionedNorm(in_dim, n_scenarios, c.pn_momentum, c.pn_eps)
        dims = [in_dim, *c.star_dims, 1]
        self.layers = nn.ModuleList(StarLinear(a, b, n_scenarios) for a, b in itertools.pairwise(dims))
        self.drop = nn.Dropout(c.dropout)
        self.domain_emb = nn.Embedding(n_scenarios, c.star_domain_dim)
        self.aux = mlp([c.star_domain_dim + in_dim, *c.star_aux_dims, 1], c.dropout, last_activation=False)

    def star_layers(self) -> list[StarLinear]:
        return [layer for layer in self.layers if isinstance(layer, StarLinear)]

    def forward(self, x: Tensor, scenario: Tensor) -> Tensor:
        self.check(x, scenario)
        h = self.norm(x, scenario)
        layers = self.star_layers()
        for layer in layers[:-1]:
            h = self.drop(torch.relu(layer(h, scenario)))
        s_m: Tensor = layers[-1](h, scenario).squeeze(-1)
        s_a: Tensor = self.aux(torch.cat([self.domain_emb(scenario), x], dim=-1)).squeeze(-1)
        return s_m + s_a

    def add_scenarios(self, k: int = 1) -> range:
        new = super().add_scenarios(k)
        self.norm.add_domains(k)
        for layer in self.star_layers():
            layer.add_domains(k)
        old = self.domain_emb.weight.data
        self.domain_emb = nn.Embedding(self.n_scenarios, old.shape[1]).to(old)
        self.domain_emb.weight.data[: old.shape[0]] = old
        return new
