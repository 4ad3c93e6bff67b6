"""What every multi-domain / multi-task CTR baseline shares: :func:`mlp`, :class:`ScenarioTowers`,
:class:`BaselineConfig` and the :class:`ScenarioModel` contract.

Contract (the same for the S&R foundation model): ``forward(x, scenario)`` with ``x`` [B, in_dim]
(the request's and the item's aspect embeddings, concatenated) and ``scenario`` [B] (long,
``0..n_scenarios-1``, a (domain, task) pair) returns logits [B], the output of the sample's own
scenario tower. ``add_scenarios(k)`` appends ``k`` freshly initialised scenarios (towers, gates,
domain parameters) for fine-tuning on a cold-start scenario unseen in pre-training; the outputs of
the existing scenarios do not move (in eval mode). Build the optimiser *after* ``add_scenarios``:
some models replace a stacked parameter by a longer one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from graph.errors import InputError


def mlp(dims: Sequence[int], dropout: float = 0.0, last_activation: bool = True) -> nn.Sequential:
    """``Linear → ReLU → Dropout`` for each consecutive pair of ``dims`` ([B, dims[0]] → [B, dims[-1]]);
    the last layer is a bare ``Linear`` when ``last_activation`` is false (a logit)."""
    if len(dims) < 2:
        raise InputError(f"mlp needs at least an input and an output width, got {list(dims)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(dims) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout > 0 else [nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class BaselineConfig:
    """Widths of the baselines (defaults are the usual small CTR settings).

    Args:
        bottom_dims: SharedBottom's shared MLP. n_experts: MMoE's experts.
        expert_hidden, expert_dim: every expert is ``mlp([in, *expert_hidden, expert_dim])``.
        tower_dim: every tower is ``mlp([d, tower_dim, 1])``. dropout: everywhere.
        ple_levels: CGC layers; ple_specific_experts / ple_shared_experts: experts per scenario / shared.
        star_dims: STAR's star-topology FCN (then → 1); star_aux_dims: its auxiliary MLP (then → 1);
        star_domain_dim: the domain-indicator embedding; pn_momentum, pn_eps: partitioned norm.
    """

    bottom_dims: tuple[int, ...] = (256, 128)
    n_experts: int = 4
    expert_hidden: tuple[int, ...] = (128,)
    expert_dim: int = 64
    tower_dim: int = 32
    dropout: float = 0.1
    ple_levels: int = 2
    ple_specific_experts: int = 1
    ple_shared_experts: int = 2
    star_dims: tuple[int, ...] = (256, 128)
    star_aux_dims: tuple[int, ...] = (64,)
    star_domain_dim: int = 16
    pn_momentum: float = 0.1
    pn_eps: float = 1e-5

    def __post_init__(self) -> None:
        widths = [*self.bottom_dims, *self.expert_hidden, *self.star_dims, *self.star_aux_dims]
        counts = [self.n_experts, self.expert_dim, self.tower_dim, self.ple_levels, self.ple_shared_experts]
        counts += [self.ple_specific_experts, self.star_domain_dim]
        if min(widths + counts) < 1 or not self.bottom_dims or not self.star_dims:
            raise InputError(f"every width and count of BaselineConfig must be >= 1: {self.as_dict()}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 < self.pn_momentum <= 1.0 and self.pn_eps > 0):
            raise InputError("BaselineConfig needs 0 <= dropout < 1, 0 < pn_momentum <= 1, pn_eps > 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick(per_scenario: Tensor, scenario: Tensor) -> Tensor:
    """Row ``scenario[b]`` of column ``b``: [S, B, ...] → [B, ...] (gradient only to the picked rows)."""
    return per_scenario[scenario, torch.arange(scenario.shape[0], device=scenario.device)]


class ScenarioTowers(nn.Module):
    """One tower ``mlp([in_dim, tower_dim, 1])`` per scenario: h [B, in_dim], scenario [B] → logit [B].

    All towers run on the whole batch and each sample's own logit is gathered ([S, B] → [B]): no
    host sync, and a tower whose scenario is absent from the batch gets an exactly zero gradient.
    """

    def __init__(self, in_dim: int, n_scenarios: int, tower_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dim, self.tower_dim, self.dropout = in_dim, tower_dim, dropout
        self.towers = nn.ModuleList(self._tower() for _ in range(n_scenarios))

    def _tower(self) -> nn.Module:
        return mlp([self.in_dim, self.tower_dim, 1], self.dropout, last_activation=False)

    def forward(self, h: Tensor, scenario: Tensor) -> Tensor:
        every = torch.stack([tower(h).squeeze(-1) for tower in self.towers])  # [S, B]
        return pick(every, scenario)

    def add_scenarios(self, k: int) -> None:
        self.towers.extend(self._tower() for _ in range(k))


class ScenarioModel(nn.Module):
    """Base of the baselines: checks the inputs and the scenario count (see the module docstring)."""

    def __init__(self, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None) -> None:
        super().__init__()
        if in_dim < 1 or n_scenarios < 1:
            raise InputError(f"in_dim and n_scenarios must be >= 1, got {in_dim} and {n_scenarios}")
        self.in_dim, self.n_scenarios = in_dim, n_scenarios
        self.config = config or BaselineConfig()

    def check(self, x: Tensor, scenario: Tensor) -> None:
        """Shapes only (no value check: that would sync a GPU)."""
        if x.dim() != 2 or x.shape[1] != self.in_dim or scenario.shape != x.shape[:1]:
            raise InputError(
                f"expected x [B, {self.in_dim}] and scenario [B], got "
                f"{list(x.shape)} and {list(scenario.shape)}"
            )
        if scenario.dtype != torch.long:
            raise InputError(f"scenario must be a long tensor, got {scenario.dtype}")

    def add_scenarios(self, k: int = 1) -> range:
        """Append ``k`` fresh scenarios; returns their indices. Subclasses extend their parts."""
        if k < 1:
            raise InputError(f"add_scenarios needs k >= 1, got {k}")
        self.n_scenarios += k
        return range(self.n_scenarios - k, self.n_scenarios)
