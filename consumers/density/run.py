"""The density consumer's evaluation (issue 19): ``run(store, config)`` → :class:`DensityResults`.

For every data set and seed of ``config`` the set is loaded (:func:`.data.load_dataset`, seeded),
and every method is fit, timed, sampled and scored (:func:`.evaluate.evaluate`); ``diffusion`` and
``diffusion-ode`` share one fit. ``store`` is read only for the ``users`` data set (the store's users
as rows of numbers); None otherwise.
"""

from __future__ import annotations

import shlex

import numpy as np
import pandas as pd

from consumers.density.config import METHODS, DensityConfig, EvalConfig
from consumers.density.data import DATASETS, load_dataset
from consumers.density.evaluate import OursCache, evaluate
from consumers.density.report import PLOT_POINTS, DensityResults, write_results
from graph.progress import StageProgress
from graph.store import GraphStore


def command_line(config: EvalConfig) -> str:
    """The ``mokg eval density`` call that makes ``config``'s table (ours' settings where they differ
    from the defaults; the baselines at theirs)."""
    args = [
        "--datasets",
        ",".join(config.datasets),
        "--methods",
        ",".join(config.methods),
        "--n",
        str(config.n) if config.n is not None else "0",
        "--seeds",
        ",".join(map(str, config.seeds)),
        "--sample-size",
        str(config.sample_size),
    ]
    default = DensityConfig()
    for name in ("eps", "steps", "pairs", "width", "depth", "epochs"):
        if getattr(config.density, name) != getattr(default, name):
            args += [f"--{name}", str(getattr(config.density, name))]
    return "mokg eval density " + " ".join(shlex.quote(a) for a in args)


def run(
    store: GraphStore | None, config: EvalConfig, progress: StageProgress | None = None
) -> DensityResults:
    """The table of ``config`` (module doc); ``progress`` gets one stage ticked per fitted method."""
    rows, samples, data_points = [], {}, {}
    cache = OursCache()
    tick = progress("density: data set × seed × method", _count(config)) if progress else None
    for name in config.datasets:
        for seed in config.seeds:
            data = load_dataset(name, config.n, seed, store=store)
            if seed == config.seeds[0] and data.dim == 2:
                data_points[name] = data.train[:PLOT_POINTS]
            for method in config.methods:
                done = evaluate(method, data, config, seed, cache, progress)
                rows.append(done.row)
                if seed == config.seeds[0] and data.dim == 2:
                    samples[(name, method)] = np.asarray(done.samples[:PLOT_POINTS])
                if tick is not None:
                    tick()
            cache = OursCache()  # one data set and seed at a time in memory
    return DensityResults(_name(config), pd.DataFrame(rows), _meta(config), samples, data_points)


def _count(config: EvalConfig) -> int:
    return len(config.datasets) * len(config.seeds) * len(config.methods)


def _name(config: EvalConfig) -> str:
    return "-".join(config.datasets) if len(config.datasets) <= 3 else f"{len(config.datasets)}sets"


def _meta(config: EvalConfig) -> dict[str, str]:
    d = config.density
    notes = {
        "command": command_line(config),
        "seeds": ", ".join(map(str, config.seeds)),
        "data": "; ".join(f"{n}: {DATASETS[n].description} ({DATASETS[n].source})" for n in config.datasets),
        "methods": "; ".join(f"{m}: {METHODS[m]}" for m in config.methods),
        "ours": f"eps {d.eps}, {d.steps} {d.solver} steps ({d.grid} grid), batch {d.batch_size}, "
        f"{d.pairs} pairs, MLP {d.depth}×{d.width} tanh, {d.epochs} epochs",
        "fit_s": "wall time of the fit; diffusion: ODE labelling of the pairs + MLP training; "
        "diffusion-ode: 0 (training-free, the ODE needs only the data)",
        "sample_s_10k": f"wall time to draw {config.sample_size:,} samples, per 10,000",
        "test_loglik": f"mean log-density of the first {config.loglik_rows} test rows, standardised units "
        "(— where the model has none: the MLP generator, DSM). diffusion-ode: the ODE likelihood (D7), "
        f"a Gaussian kernel density of bandwidth √ε = {d.eps**0.5:.3g} on the train split's Monte "
        f"Carlo batches; computed for dim ≤ {config.loglik_max_dim} only (slow above)",
        "metrics": "samples vs the test split: unbiased MMD² (median-heuristic Gaussian kernel), energy "
        "distance, sliced W1 (128 directions), C2ST accuracy (0.5 = indistinguishable), memo ratio "
        "(median sample→train NN distance / median test→train NN distance; 1 = no copying, 0 = copies), "
        "memo share (samples whose nearest train point is < 1/3 of the second nearest; held-out: the "
        "test split's own share)",
    }
    return notes


__all__ = ["DensityResults", "EvalConfig", "command_line", "run", "write_results"]
