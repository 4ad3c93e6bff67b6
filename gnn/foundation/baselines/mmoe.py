"""MMoE (J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong, E. H. Chi, "Modeling Task Relationships in
Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018, doi:10.1145/3219819.3220007).

``n`` experts shared by every task, one softmax gate per task, one tower per task::

    g^k(x) = softmax(W_gk x)                          (1)  W_gk [n, in_dim]
    f^k(x) = Σ_{i=1..n} g^k(x)_i f_i(x)               (2)  f_i an expert MLP
    y_k    = h^k(f^k(x))                              (3)  h^k the tower of task k

(Tags are local; the equations are those of the paper's §4.2.) Here a task is a scenario.
:class:`MMoELayer` is eqs. 1–2 alone, reused by the foundation model after its domain adaptation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gnn.foundation.baselines.common import BaselineConfig, ScenarioModel, ScenarioTowers, mlp, pick
from graph.errors import InputError


class MMoELayer(nn.Module):
    """Experts and per-task gates (eqs. 1–2): x [B, in_dim] → f^k(x) [T, B, expert_dims[-1]].

    Args:
        in_dim: width of x. n_experts: ``n``. expert_dims: each expert is ``mlp([in_dim, *expert_dims])``
        (ReLU on its output too). n_tasks: ``T`` gates. dropout: inside the experts.
    """

    def __init__(
        self, in_dim: int, n_experts: int, expert_dims: Sequence[int], n_tasks: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if n_experts < 1 or n_tasks < 1 or not expert_dims:
            raise InputError(
                f"MMoELayer needs n_experts, n_tasks >= 1 and expert_dims, got "
                f"{n_experts}, {n_tasks}, {list(expert_dims)}"
            )
        self.in_dim, self.n_experts, self.out_dim = in_dim, n_experts, int(expert_dims[-1])
        self.experts = nn.ModuleList(mlp([in_dim, *expert_dims], dropout) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_experts) for _ in range(n_tasks))

    @property
    def n_tasks(self) -> int:
        return len(self.gates)

    def expert_outputs(self, x: Tensor) -> Tensor:
        """f_i(x) for every expert: [B, in_dim] → [B, n, d]."""
        return torch.stack([expert(x) for expert in self.experts], dim=1)

    def gate_weights(self, x: Tensor) -> Tensor:
        """g^k(x) for every task (eq. 1): [B, in_dim] → [T, B, n], rows sum to 1."""
        return torch.softmax(torch.stack([gate(x) for gate in self.gates]), dim=-1)

    def forward(self, x: Tensor, task: Tensor | None = None) -> Tensor:
        """Eq. 2: [T, B, d] for every task, or [B, d] (each sample's own task) when ``task`` [B] is given."""
        experts, gates = self.expert_outputs(x), self.gate_weights(x)
        if task is None:
            return torch.einsum("tbn,bnd->tbd", gates, experts)
        return torch.einsum("bn,bnd->bd", pick(gates, task), experts)

    def add_tasks(self, k: int) -> None:
        """Append ``k`` freshly initialised gates (the experts stay shared)."""
        self.gates.extend(nn.Linear(self.in_dim, self.n_experts) for _ in range(k))


class MMoE(ScenarioModel):
    """MMoE with one gate and one tower per scenario (eq. 3); returns the tower logit [B]."""

    def __init__(self, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None) -> None:
        super().__init__(in_dim, n_scenarios, config)
        c = self.config
        self.mmoe = MMoELayer(in_dim, c.n_experts, [*c.expert_hidden, c.expert_dim], n_scenarios, c.dropout)
        self.towers = ScenarioTowers(c.expert_dim, n_scenarios, c.tower_dim, c.dropout)

    def forward(self, x: Tensor, scenario: Tensor) -> Tensor:
        self.check(x, scenario)
        out: Tensor = self.towers(self.mmoe(x, scenario), scenario)
        return out

    def add_scenarios(self, k: int = 1) -> range:
        new = super().add_scenarios(k)
        self.mmoe.add_tasks(k)
        self.towers.add_scenarios(k)
        return new
