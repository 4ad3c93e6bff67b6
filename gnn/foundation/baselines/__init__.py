"""Multi-domain / multi-task CTR baselines beside the S&R Multi-Domain Foundation model.

Every model takes the same input: ``x`` [B, in_dim] (the request's and the item's aspect
embeddings, concatenated) and ``scenario`` [B] (long, ``0..n_scenarios-1``; a scenario is a
(domain, task) pair), and returns logits [B] from the sample's own scenario tower:

- ``shared_bottom``: :class:`SharedBottom` (Caruana, "Multitask Learning", Machine Learning 1997);
- ``mmoe``: :class:`MMoE` (Ma et al., KDD 2018), with the reusable :class:`MMoELayer`;
- ``ple``: :class:`PLE` (Tang et al., RecSys 2020);
- ``star``: :class:`STAR` (Sheng et al., CIKM 2021, arXiv 2101.11427).

Constructors: ``Model(in_dim, n_scenarios, config=None)``; :func:`make_baseline` by name.
A cold-start scenario unseen in pre-training: ``new = model.add_scenarios(k)`` appends ``k``
freshly initialised towers / gates / domain parameters and returns their indices; the existing
scenarios' outputs are unchanged (eval mode). Build the optimiser after it.
"""

from __future__ import annotations

from gnn.foundation.baselines.common import BaselineConfig, ScenarioModel, ScenarioTowers, mlp
from gnn.foundation.baselines.mmoe import MMoE, MMoELayer
from gnn.foundation.baselines.ple import PLE
from gnn.foundation.baselines.shared_bottom import SharedBottom
from gnn.foundation.baselines.star import STAR
from graph.errors import InputError

BASELINES: dict[str, type[ScenarioModel]] = {
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "star": STAR,
}


def make_baseline(
    name: str, in_dim: int, n_scenarios: int, config: BaselineConfig | None = None
) -> ScenarioModel:
    """The baseline called ``name`` (a key of :data:`BASELINES`); InputError naming the choices otherwise."""
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r}; choose one of {', '.join(sorted(BASELINES))}")
    return BASELINES[name](in_dim, n_scenarios, config)


__all__ = [
    "BASELINES",
    "PLE",
    "STAR",
    "BaselineConfig",
    "MMoE",
    "MMoELayer",
    "ScenarioModel",
    "ScenarioTowers",
    "SharedBottom",
    "make_baseline",
    "mlp",
]
