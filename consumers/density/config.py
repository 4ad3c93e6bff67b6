"""Settings of the diffusion density estimator (:func:`consumers.density.model.fit`) and of its
evaluation (:class:`EvalConfig`, ``mokg eval density``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from consumers.density.baselines import DSMConfig, FlowConfig, KDEConfig
from consumers.density.ode import GRIDS, SOLVERS
from graph.errors import InputError


@dataclass(frozen=True)
class DensityConfig:
    """Schedule, ODE, score estimator and generator of arXiv:2310.14458 (defaults: the paper's where
    it states them).

    Args:
        eps: ``ε`` of (D1): the noise left at ``t = 0`` (the kernel bandwidth is ``√ε``, in the
            data's units: standardise the data first).
        steps, solver, grid: the sampling ODE (D5): ``steps`` steps of ``euler`` (the paper's) or
            ``heun`` on a ``uniform`` (the paper's) or ``log`` time grid.
        batch_size: data points per score evaluation (D4); the whole data set when it is no larger.
        chunk: points carried through the ODE at a time (memory ~ ``chunk · batch_size``).
        pairs: (noise, sample) pairs the ODE labels for the generator.
        width, depth: the generator's tanh hidden layers (``depth`` layers of ``width`` units).
        epochs, mlp_batch, lr: its Adam training on the pairs.
        likelihood_steps, likelihood_solver: the ODE of (D7) (always on the ``log`` grid).
        device: torch device of the ODE and the generator.
        seed: seeds the noise, the data batches, the generator's weights and its batches.
    """

    eps: float = 1e-4
    steps: int = 500
    solver: str = "euler"
    grid: str = "uniform"
    batch_size: int = 2048
    chunk: int = 1024
    pairs: int = 10_000
    width: int = 64
    depth: int = 2
    epochs: int = 300
    mlp_batch: int = 512
    lr: float = 1e-3
    likelihood_steps: int = 200
    likelihood_solver: str = "heun"
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 1.0:
            raise InputError(f"eps must lie in (0, 1), got {self.eps}")
        for name in ("steps", "batch_size", "chunk", "pairs", "width", "depth", "epochs", "mlp_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.likelihood_steps < 1:
            raise InputError(f"likelihood_steps must be at least 1, got {self.likelihood_steps}")
        for name in ("solver", "likelihood_solver"):
            if getattr(self, name) not in SOLVERS:
                raise InputError(f"unknown {name} {getattr(self, name)!r}; choose from {', '.join(SOLVERS)}")
        if self.grid not in GRIDS:
            raise InputError(f"unknown grid {self.grid!r}; choose from {', '.join(GRIDS)}")
        if not self.lr > 0.0:
            raise InputError(f"lr must be positive, got {self.lr}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FAST_LABELLING: dict[str, Any] = {"steps": 100}
"""What ``diffusion-fast`` changes in :class:`DensityConfig`: the pairs are labelled by the paper's
solver (explicit Euler, uniform grid) in 100 steps instead of 500: a fifth of the score evaluations.
Chosen on moons, checkerboard and 2spirals (20,000 rows, 10,000 ODE samples vs the test split):
100 steps kept C2ST within 0.01 of 500 steps, 50 steps did not on 2spirals (0.55); Heun on the
uniform grid diverges near ``t = 0``; Heun on the log grid matches the ODE more exactly and lands
closer to the train points (memorisation ratio 0.83–0.88 against 0.95–0.99)."""

METHODS: dict[str, str] = {
    "diffusion": "training-free diffusion, MLP generator (ours, one forward pass)",
    "diffusion-fast": "the same, pairs labelled by a cheaper ODE solve (ours, FAST_LABELLING)",
    "diffusion-ode": "training-free diffusion, probability-flow ODE sampler (ours, no training)",
    "kde": "Gaussian KDE, cross-validated bandwidth",
    "maf": "MAF (zuko), early stopping",
    "nsf": "NSF (zuko), early stopping",
    "dsm": "denoising score matching MLP, probability-flow ODE",
}
"""The methods ``mokg eval density`` compares: name → what it is."""


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation of issue 19 (:func:`consumers.density.run.run`).

    Args:
        datasets: names of :data:`consumers.density.data.DATASETS`.
        methods: names of :data:`METHODS` (``diffusion`` and ``diffusion-ode`` share one fit;
            ``diffusion-fast`` has its own).
        n: rows per data set in all (train + valid + test); None: the set's default or all rows.
        seeds: each seeds the data (generation or split), every model and its samples.
        sample_size: samples drawn per model (timed; the metrics compare them with the test split).
        loglik_rows: test rows every model's log-likelihood is averaged over (the first ones).
        loglik_max_dim: the ODE likelihood (D7) of ours only up to this dimension (slow above).
        density, kde, maf, nsf, dsm: each model's own config.
    """

    datasets: tuple[str, ...] = ("moons", "checkerboard")
    methods: tuple[str, ...] = tuple(METHODS)
    n: int | None = 5000
    seeds: tuple[int, ...] = (0,)
    sample_size: int = 10_000
    loglik_rows: int = 1000
    loglik_max_dim: int = 8
    density: DensityConfig = field(default_factory=DensityConfig)
    kde: KDEConfig = field(default_factory=KDEConfig)
    maf: FlowConfig = field(default_factory=lambda: FlowConfig(kind="maf"))
    nsf: FlowConfig = field(default_factory=lambda: FlowConfig(kind="nsf"))
    dsm: DSMConfig = field(default_factory=DSMConfig)

    def __post_init__(self) -> None:
        from consumers.density.data import DATASETS

        _known("data set", self.datasets, tuple(DATASETS))
        _known("method", self.methods, tuple(METHODS))
        if not self.seeds:
            raise InputError("give at least one seed (e.g. --seeds 0,1,2)")
        if self.n is not None and self.n < 10:
            raise InputError(f"n must be at least 10 to leave rows in every split, got {self.n}")
        for name in ("sample_size", "loglik_rows"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(kind: str, given: tuple[str, ...], choices: tuple[str, ...]) -> None:
    """A one-line error naming the unknown names and the choices; an empty list is refused too."""
    if not given:
        raise InputError(f"give at least one {kind}; choose from {', '.join(choices)}")
    unknown = [g for g in given if g not in choices]
    if unknown:
        raise InputError(f"unknown {kind}(s) {', '.join(unknown)}; choose from {', '.join(choices)}")
