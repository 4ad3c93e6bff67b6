"""`mokg embed`: the text embeddings of the store's nodes, into the cache training reads (issue 21)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mokg.context import open_store

if TYPE_CHECKING:
    from mokg.commands import Groups


def embed(
    label: Annotated[
        list[str] | None, typer.Option(help="Only these labels (repeat); default: every label with text.")
    ] = None,
    encoder: Annotated[str, typer.Option(help="The text encoder (registered name).")] = "minilm",
    cache: Annotated[
        Path | None,
        typer.Option(help="Embedding cache folder (default: $MOKG_CACHE or ~/.cache/mokg/embeddings)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write label, id, vector as Parquet here.")] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Encode in ranges on Dask workers: local:N (N processes here) or tcp://HOST:PORT "
            "(workers need the same encoder; the driver alone writes the cache). Needs mokg[scale].",
        ),
    ] = None,
) -> None:
    """Encode every node text (names, descriptions, queries, thoughts) once, so training with text
    features finds them cached; a rerun encodes only what is new, and a killed run resumes (each
    chunk of 10,000 texts is cached as soon as it is encoded).

    Example: `mokg embed --cluster local:2 --out vectors.parquet`.
    """
    from graph.progress import Progress, Stage
    from loaders.embed import ShardedEncoder, run_embed
    from loaders.features import TextEncoder, make_encoder

    with ExitStack() as stack:
        if cluster is None:
            text_encoder: TextEncoder = make_encoder(encoder)
        else:
            from graph.cluster import open_cluster

            text_encoder = ShardedEncoder(encoder, stack.enter_context(open_cluster(cluster)))
        store = stack.enter_context(open_store())
        board, bars = stack.enter_context(Progress()), dict[str, Stage]()

        def show(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = board.stage(f"embedding {name} texts", total=total, unit="texts")
            bars[name].advance(done)

        report = run_embed(store, text_encoder, labels=label or (), cache_dir=cache, out=out, progress=show)
    for name, row in report.labels.items():
        counts = f"{row['nodes']:>8,} nodes {row['with_text']:>8,} with text {row['encoded']:>8,} encoded"
        typer.echo(f"{name:10} {counts}")
    typer.echo(
        f"{report.total('encoded'):,} texts encoded, {report.total('with_text') - report.total('encoded'):,} "
        f"from the cache" + (f"; wrote {report.out}" if report.out else "")
    )


def register(groups: Groups) -> None:
    groups.app.command("embed")(embed)
