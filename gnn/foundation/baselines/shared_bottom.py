"""SharedBottom: hard parameter sharing (R. Caruana, "Multitask Learning", Machine Learning 28(1), 1997).

One MLP shared by every scenario, one tower per scenario on top of it::

    h   = f_shared(x)                      (1)   x [B, in_dim] → h [B, bottom_dims[-1]]
    y_s = σ(t_s(h))   for s = scenario     (2)   logit [B]
"""

from __future__ import annotations

from torch import Tensor

from gnn.foundation.baselines.common import BaselineConfig, ScenarioModel, ScenarioTowers, mlp


class SharedBottom(ScenarioModel):
    """Shared bottom MLP (eq. 1) and per-scenario towers (eq. 2); returns the logit of eq. 2 [B]."""

    def __init__(self, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None) -> None:
        super().__init__(in_dim, n_scenarios, config)
        c = self.config
        self.bottom = mlp([in_dim, *c.bottom_dims], c.dropout)
        self.towers = ScenarioTowers(c.bottom_dims[-1], n_scenarios, c.tower_dim, c.dropout)

    def forward(self, x: Tensor, scenario: Tensor) -> Tensor:
        self.check(x, scenario)
        out: Tensor = self.towers(self.bottom(x), scenario)
        return out

    def add_scenarios(self, k: int = 1) -> range:
        new = super().add_scenarios(k)
        self.towers.add_scenarios(k)
        return new
