"""The retrieval consumer's entry points: ``run(store, config)`` (the baseline table) and
:func:`build_index` (the item index ``mokg search`` serves from).

The table has one row per method and query set: ``test`` (the held-out warm-domain queries) and
``cold`` (every query of the cold-start domain, never trained on), with the measures of
:mod:`.evaluate`. Every method ranks *all* items of the corpus (no domain filter). ``ann_recall``
reports how much of the exact (``IndexFlatIP``) top 10 / top 100 the approximate index keeps, on the
test and cold queries, for the bi-encoder's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from consumers.retrieval.biencoder import dense_run, embed
from consumers.retrieval.bm25 import bm25_run
from consumers.retrieval.config import RetrievalConfig
from consumers.retrieval.corpus import RetrievalCorpus, electronics_corpus, store_items, world_corpus
from consumers.retrieval.evaluate import MEASURES, evaluate
from consumers.retrieval.index import build_faiss, overlap_at_k, save_index
from graph import files
from graph.errors import InputError
from graph.store import GraphStore
from loaders.features import TextEncoder, make_encoder

if TYPE_CHECKING:
    from consumers.retrieval.mural import Mural

METHOD_NAMES = {
    "bm25": "BM25 (bm25s)",
    "minilm": "MiniLM zero-shot (bi-encoder)",
    "bibert": "BIBERT (MiniLM fine-tuned)",
    "mural": "MURAL (MiniLM, pre-trained + fine-tuned)",
}
QUERY_SETS = ("test", "cold")


@dataclass(frozen=True)
class RetrievalResults:
    """The table (method, queries, n_queries, one column per measure) and its context."""

    corpus: str
    table: pd.DataFrame
    ann_recall: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        cols = ["method", "queries", "n_queries", *MEASURES]
        head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
        body = "".join(
            "| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |\n"
            for r in self.table.to_dict("records")
        )
        notes = "".join(f"\n- {k}: {v}" for k, v in self.meta.items())
        ann = ", ".join(f"{k} {v:.4f}" for k, v in self.ann_recall.items())
        return (
            f"{head}{body}{notes}" + (f"\n- approximate index recall vs exact: {ann}" if ann else "") + "\n"
        )


def load_corpus(store: GraphStore | None, config: RetrievalConfig) -> RetrievalCorpus:
    """The corpus ``config`` names (the world needs ``store`` and ``config.world``)."""
    if config.corpus == "electronics":
        return electronics_corpus(seed=config.seed, shares=config.split)
    if store is None or config.world is None:
        raise InputError("the world corpus needs a store and the world directory (--world DIR)")
    return world_corpus(store, config.world, seed=config.seed, shares=config.split)


def run(
    store: GraphStore | None, config: RetrievalConfig, encoder: TextEncoder | None = None
) -> RetrievalResults:
    """The baselines' table on ``config``'s corpus (module doc). ``encoder`` overrides ``config.encoder``."""
    corpus = load_corpus(store, config)
    sets = {name: corpus.select(name) for name in QUERY_SETS}
    asked = pd.concat(list(sets.values()), ignore_index=True).drop_duplicates("query")
    runs: dict[str, dict[str, dict[str, float]]] = {}
    ann: dict[str, float] = {}
    ids, qids = list(corpus.items["item"]), list(asked["query"])
    if "bm25" in config.methods:
        runs["bm25"] = bm25_run(ids, list(corpus.items["text"]), qids, list(asked["text"]), config.depth)
    model_id = ""
    if "minilm" in config.methods:
        enc = encoder or make_encoder(config.encoder)
        model_id = enc.model_id
        ivec = embed(list(corpus.items["text"]), enc, config.cache_dir)
        qvec = embed(list(asked["text"]), enc, config.cache_dir)
        runs["minilm"] = dense_run(ids, ivec, qids, qvec, config.depth)
        if config.index_type != "flat":
            ann = _ann_recall(ivec, qvec, config.index_type, (10, config.depth))
    trained_meta: dict[str, str] = {}
    if "bibert" in config.methods:
        runs["bibert"], trained_meta["bibert"] = _bibert_run(corpus, asked, config)
    if "mural" in config.methods:
        runs["mural"], trained_meta["mural"] = _mural_run(corpus, asked, config)
    rows = []
    for method, found in runs.items():
        for name, queries in sets.items():
            scores = evaluate(found, corpus.qrels_dict(queries))
            rows.append(
                {"method": METHOD_NAMES[method], "queries": name, "n_queries": len(queries), **scores}
            )
    meta = {
        "corpus": corpus.name,
        "items": len(corpus.items),
        "queries (train/dev/test/cold)": "/".join(
            str(len(corpus.select(s))) for s in ("train", "dev", "test", "cold")
        ),
        "cold domain": corpus.cold_domain,
        "seed": config.seed,
        "depth": config.depth,
        "encoder": model_id or "-",
        "graph version": str(store.version()) if store is not None and corpus.name == "world" else "-",
    }
    meta.update(trained_meta)
    return RetrievalResults(corpus.name, pd.DataFrame(rows), ann, meta)


def _mural_run(
    corpus: RetrievalCorpus, asked: pd.DataFrame, config: RetrievalConfig
) -> tuple[dict[str, dict[str, float]], str]:
    """MURAL from the shipped MiniLM: pre-trained on the items, fine-tuned on the train queries, then
    every item and asked query embedded (dot product, exact search)."""
    import time

    from consumers.retrieval.mural import MuralConfig, load_mural
    from consumers.retrieval.mural_train import TrainConfig, finetune, pretrain

    started = time.perf_counter()
    model = load_mural(corpus.items, MuralConfig())
    cfg = TrainConfig(
        pretrain_epochs=config.mural_epochs[0],
        finetune_epochs=config.mural_epochs[1],
        seed=config.seed,
        item_field=config.mural_item_field,
    )
    pre = pretrain(model, corpus, cfg)
    fine = finetune(model, corpus, cfg)
    found = _trained_run(model, corpus, asked, cfg.item_field, config.depth)
    note = (
        f"aspects {', '.join(model.vocab.names)}; items read by their {cfg.item_field}; epochs "
        f"{config.mural_epochs[0]}+{config.mural_epochs[1]} ({len(pre['loss'])}+{len(fine['loss'])} steps, "
        f"last losses {_last(pre['loss'])} / {_last(fine['loss'])}); {time.perf_counter() - started:.0f} s"
    )
    return found, note


def _bibert_run(
    corpus: RetrievalCorpus, asked: pd.DataFrame, config: RetrievalConfig
) -> tuple[dict[str, dict[str, float]], str]:
    """BIBERT (:mod:`.bibert`): the shipped MiniLM fine-tuned as MURAL is (its fine-tuning epochs,
    item field and seed) without the aspects and without pre-training; dot product, exact search."""
    import time

    from consumers.retrieval.bibert import finetune_bibert, load_bibert
    from consumers.retrieval.mural_train import TrainConfig

    started = time.perf_counter()
    model = load_bibert(corpus.items)
    cfg = TrainConfig(
        finetune_epochs=config.mural_epochs[1], seed=config.seed, item_field=config.mural_item_field
    )
    fine = finetune_bibert(model, corpus, cfg)
    found = _trained_run(model, corpus, asked, cfg.item_field, config.depth)
    note = (
        f"[CLS] vector, no aspects; items read by their {cfg.item_field}; {cfg.finetune_epochs} fine-tuning "
        f"epochs ({len(fine['loss'])} steps, last loss {_last(fine['loss'])}); "
        f"{time.perf_counter() - started:.0f} s"
    )
    return found, note


def _trained_run(
    model: Mural, corpus: RetrievalCorpus, asked: pd.DataFrame, item_field: str, depth: int
) -> dict[str, dict[str, float]]:
    """Every item (its ``item_field``) and asked query embedded by ``model``; exact top ``depth``."""
    ivec = model.embed(list(corpus.items[item_field].astype(str)))
    qvec = model.embed(list(asked["text"].astype(str)))
    return dense_run(list(corpus.items["item"]), ivec, list(asked["query"]), qvec, depth)


def _last(history: list[float]) -> str:
    return f"{history[-1]:.3f}" if history else "-"


def _ann_recall(ivec: np.ndarray, qvec: np.ndarray, index_type: str, ks: tuple[int, ...]) -> dict[str, float]:
    k = min(max(ks), len(ivec))
    exact, approx = build_faiss(ivec, "flat"), build_faiss(ivec, index_type)
    _, e = exact.search(qvec, k)
    _, a = approx.search(qvec, k)
    as_pairs = [[[(str(j), 0.0) for j in row] for row in m] for m in (a, e)]
    return {f"{index_type} recall@{c}": overlap_at_k(as_pairs[0], as_pairs[1], min(c, k)) for c in ks}


def write_results(results: RetrievalResults, out: Path) -> list[Path]:
    """``retrieval_<corpus>.csv`` and ``.md`` in ``out`` (each written aside and renamed into place)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"retrieval_{results.corpus}.csv", out / f"retrieval_{results.corpus}.md"
    files.write_file(csv, lambda tmp: results.table.to_csv(tmp, index=False))
    files.write_text(md, results.markdown())
    return [csv, md]


def build_index(
    store: GraphStore,
    out: Path,
    *,
    encoder_name: str = "minilm",
    index_type: str = "hnsw",
    encoder: TextEncoder | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Embed every item of ``store`` (text: title, category path, brand) and save the index folder."""
    items = store_items(store)
    if items.empty:
        raise InputError("the store has no items to index")
    enc = encoder or make_encoder(encoder_name)
    vectors = embed(list(items["text"]), enc, cache_dir)
    meta = {
        "graph_version": str(store.version()),
        "encoder": encoder_name,
        "model_id": enc.model_id,
        "method": "zero-shot bi-encoder (MURAL replaces it)",
        "corpus": "store",
    }
    save_index(out, vectors, items, index_type, meta)
    return meta | {"n_items": len(items), "index_type": index_type}


__all__ = ["RetrievalConfig", "RetrievalResults", "build_index", "load_corpus", "run", "write_results"]
