"""`mokg world generate|card`: the seeded marketing world (a simulator with a known ground truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    from mokg.commands import Groups


def register(groups: Groups) -> None:
    """`world generate` and `world card`."""
    groups["world"].command("generate")(world_generate)
    groups["world"].command("card")(world_card)


def world_generate(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder to write; an existing one is replaced only if it holds a world alone."
        ),
    ],
    scale: Annotated[
        str, typer.Option(help="demo (2k users, seconds), small (50k), bench (1M users, minutes).")
    ] = "demo",
    seed: Annotated[int, typer.Option(help="Same scale and seed give the same files, byte for byte.")] = 0,
    users: Annotated[int | None, typer.Option(help="Override the scale's number of users.")] = None,
    items: Annotated[int | None, typer.Option(help="Override the scale's number of items.")] = None,
) -> None:
    """Write a world to Parquet: visible/ (what models may see) and hidden/ (evaluator-only truth)."""
    from graph.files import check_folder
    from graph.progress import Progress
    from loaders.world.config import world_config
    from loaders.world.generate import claim_world, generate_world

    sizes = {k: v for k, v in (("n_users", users), ("n_items", items)) if v is not None}
    if any(v < 1 for v in sizes.values()):
        raise InputError("--users and --items must be >= 1")
    cfg = world_config(scale, seed, **sizes)
    check_folder(out, claim_world)
    with Progress() as board:
        stage = board.stage(f"generating the {scale} world", unit="chunks")
        manifest = generate_world(cfg, out, progress=stage.update)
    files = manifest["files"]
    typer.echo(
        f"wrote {out}: "
        + ", ".join(
            f"{k.split('/')[-1].removesuffix('.parquet')} {v['rows']:,}"
            for k, v in files.items()
            if k.startswith("visible/") and ("nodes/" in k or "events/" in k)
        )
    )


def world_card(
    directory: Annotated[Path, typer.Argument(help="A world directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the plots and stats.json.")] = Path(
        "loaders/world_figures"
    ),
) -> None:
    """Plots and numbers for the data card (degree distributions, domain overlap, sparsity)."""
    from loaders.world.card import write_card

    stats = write_card(directory, out)
    typer.echo(json.dumps({k: v for k, v in stats.items() if k != "files"}, indent=2))
