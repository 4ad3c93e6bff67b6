"""Baselines of issue 19 beside the training-free diffusion density model (:mod:`consumers.density`).

All meet :class:`~consumers.density.baselines.base.DensityBaseline` (``fit(train, valid, seed)``,
``log_prob(x)``, ``sample(n, seed)``, ``fit_seconds``) on standardised data:

- ``kde``: :class:`KDE`, kernel density estimate, bandwidth by cross-validation;
- ``maf``, ``nsf``: :class:`Flow` (zuko's MAF and NSF), maximum likelihood with early stopping;
- ``dsm``: :class:`DSM`, a score network trained by denoising score matching on the same schedule,
  sampled by the probability-flow ODE (no ``log_prob``).

:func:`make_baseline` builds one by name, with its default config or the one given.
"""

from __future__ import annotations

from consumers.density.baselines.base import DensityBaseline
from consumers.density.baselines.dsm import DSM, DSMConfig
from consumers.density.baselines.flows import Flow, FlowConfig
from consumers.density.baselines.kde import KDE, KDEConfig
from graph.errors import InputError

Config = KDEConfig | FlowConfig | DSMConfig
BASELINES = ("kde", "maf", "nsf", "dsm")


def make_baseline(name: str, config: Config | None = None) -> DensityBaseline:
    """The baseline ``name`` (one of :data:`BASELINES`); a config of the wrong kind is refused."""
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    if name == "kde" and isinstance(config, KDEConfig | None):
        return KDE(config)
    if name in ("maf", "nsf") and isinstance(config, FlowConfig | None):
        flow = config or FlowConfig(kind=name)
        if flow.kind != name:
            raise InputError(f"baseline {name!r} got a FlowConfig of kind {flow.kind!r}")
        return Flow(flow)
    if name == "dsm" and isinstance(config, DSMConfig | None):
        return DSM(config)
    raise InputError(f"baseline {name!r} cannot take a {type(config).__name__}")


__all__ = [
    "BASELINES",
    "DSM",
    "KDE",
    "DSMConfig",
    "DensityBaseline",
    "Flow",
    "FlowConfig",
    "KDEConfig",
    "make_baseline",
]
