"""PLE (H. Tang, J. Liu, M. Zhao, X. Gong, "Progressive Layered Extraction (PLE): A Novel Multi-Task
Learning (MTL) Model for Personalized Recommendations", RecSys 2020, doi:10.1145/3383313.3412236).

Customized Gate Control (CGC, §4.2): ``m_t`` experts per task and ``m_s`` shared experts; task
``k``'s gate mixes its own experts and the shared ones only::

    S^k(x) = [E_(k,1), …, E_(k,m_t), E_(s,1), …, E_(s,m_s)]        (1)  [B, m_t + m_s, d]
    g^k(x) = softmax(W_g^k x) · S^k(x)                            (2)  [B, d]
    y^k(x) = t^k(g^k(x))                                          (3)  the tower, a logit

PLE (§4.3) stacks ``L`` CGC levels; level ``j`` runs task ``k``'s experts and gate on task ``k``'s
output of level ``j−1``, and (below the top level) a shared gate mixes *all* experts of the level
for the shared experts above::

    g^{k,j}(x) = w^{k,j}(g^{k,j−1}(x)) · S^{k,j}(g^{k,j−1}(x))        (4)
    g^{s,j}(x) = w^{s,j}(g^{s,j−1}(x)) · [E_(1,·), …, E_(T,·), E_(s,·)]  (5)

(Tags are local.) A task is a scenario. Each expert runs once per level on its own input (the shared
ones once, not once per task). Scenarios added by :meth:`PLE.add_scenarios` get their own experts,
gates and tower; the shared gates keep mixing the pre-training scenarios' experts only, so (5) —
and every existing scenario's output — is unchanged.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from gnn.foundation.baselines.common import BaselineConfig, ScenarioModel, ScenarioTowers, mlp, pick


class CGC(nn.Module):
    """One extraction level: task inputs [T, B, in_dim] and shared input [B, in_dim] → task outputs
    [T, B, d] (eq. 4) and, unless ``top``, the shared output [B, d] (eq. 5)."""

    def __init__(self, in_dim: int, n_tasks: int, c: BaselineConfig, top: bool) -> None:
        super().__init__()
        self.in_dim, self.c, self.n_base = in_dim, c, n_tasks
        self.shared = self._experts(c.ple_shared_experts)
        self.specific = nn.ModuleList(self._experts(c.ple_specific_experts) for _ in range(n_tasks))
        n_in = c.ple_specific_experts + c.ple_shared_experts
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_in) for _ in range(n_tasks))
        n_all = n_tasks * c.ple_specific_experts + c.ple_shared_experts
        self.shared_gate = None if top else nn.Linear(in_dim, n_all)

    def _experts(self, m: int) -> nn.ModuleList:
        dims = [self.in_dim, *self.c.expert_hidden, self.c.expert_dim]
        return nn.ModuleList(mlp(dims, self.c.dropout) for _ in range(m))

    def forward(self, tasks: Tensor, shared: Tensor) -> tuple[Tensor, Tensor | None]:
        shared_e = torch.stack([e(shared) for e in self.shared], dim=1)  # [B, m_s, d]
        own_e = torch.stack(
            [
                torch.stack([e(h) for e in cast(nn.ModuleList, experts)], dim=1)
                for experts, h in zip(self.specific, tasks, strict=True)
            ]
        )  # [T, B, m_t, d]
        selected = torch.cat([own_e, shared_e.expand(len(self.specific), -1, -1, -1)], dim=2)  # eq. 1
        w = torch.softmax(torch.stack([gate(h) for gate, h in zip(self.gates, tasks, strict=True)]), -1)
        out = torch.einsum("tbm,tbmd->tbd", w, selected)  # eqs. 2 and 4
        if self.shared_gate is None:
            return out, None
        every = torch.cat([own_e[: self.n_base].permute(1, 0, 2, 3).flatten(1, 2), shared_e], dim=1)
        return out, torch.einsum("bm,bmd->bd", torch.softmax(self.shared_gate(shared), -1), every)  # eq. 5

    def add_tasks(self, k: int) -> None:
        n_in = self.c.ple_specific_experts + self.c.ple_shared_experts
        self.specific.extend(self._experts(self.c.ple_specific_experts) for _ in range(k))
        self.gates.extend(nn.Linear(self.in_dim, n_in) for _ in range(k))


class PLE(ScenarioModel):
    """``config.ple_levels`` CGC levels, then each sample's own scenario tower (eq. 3) → logit [B]."""

    def __init__(self, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None) -> None:
        super().__init__(in_dim, n_scenarios, config)
        c = self.config
        widths = [in_dim] + [c.expert_dim] * (c.ple_levels - 1)
        self.levels = nn.ModuleList(
            CGC(w, n_scenarios, c, top=j == c.ple_levels - 1) for j, w in enumerate(widths)
        )
        self.towers = ScenarioTowers(c.expert_dim, n_scenarios, c.tower_dim, c.dropout)

    def forward(self, x: Tensor, scenario: Tensor) -> Tensor:
        self.check(x, scenario)
        tasks, shared = x.expand(self.n_scenarios, -1, -1), x
        for level in self.levels:
            tasks, next_shared = level(tasks, shared)
            shared = next_shared if next_shared is not None else shared
        out: Tensor = self.towers(pick(tasks, scenario), scenario)
        return out

    def add_scenarios(self, k: int = 1) -> range:
        new = super().add_scenarios(k)
        for level in self.levels:
            cast(CGC, level).add_tasks(k)
        self.towers.add_scenarios(k)
        return new
