"""The typed config of each targeting method, built from the options people give.

`mokg audience score|export` and the workbench's audience pages build a method's config here, so
the same options give the same config (and the same ``config_hash`` in an export's manifest)
wherever an audience is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gnn.audience.base import TARGETERS, AudienceError


def method_config(
    method: str,
    seed: int = 0,
    features: bool = True,
    conversions: Path | None = None,
    windows: Path | None = None,
    epochs: int | None = None,
) -> Any:
    """The config of ``method``: the GNN's ``seed``, MiniLM ``features`` and ``epochs`` (None: its
    default) for gnn, lookalike and density; the advertiser's conversion log and campaign
    schedule for lookalike and density."""
    from gnn.audience.density import DensityTargeterConfig
    from gnn.audience.gnn import GNNConfig
    from gnn.audience.lookalike import LookalikeConfig
    from gnn.audience.ppr import PPRConfig
    from gnn.audience.rule import RuleConfig

    if method not in TARGETERS:
        raise AudienceError(f"unknown targeting method {method!r}; choose one of: {', '.join(TARGETERS)}")
    gnn = GNNConfig(seed=seed, features=features)
    if epochs is not None:
        gnn = GNNConfig(seed=seed, features=features, epochs=epochs)
    if method == "rule":
        return RuleConfig()
    if method == "ppr":
        return PPRConfig()
    if method == "gnn":
        return gnn
    if method == "lookalike":
        return LookalikeConfig(gnn=gnn, conversions=conversions, windows=windows)
    return DensityTargeterConfig(gnn=gnn, conversions=conversions, windows=windows, seed=seed)
