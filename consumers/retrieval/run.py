"""The retrieval consumer's evaluation: ``run(store, config)`` (one seed) and :func:`run_seeds`.

The table has one row per method and query set: ``test`` (the held-out warm-domain queries),
``cold`` (every query of the cold-start domain, never trained on) and, where the corpus has them,
``intent`` (the held-out queries that name only an intent, graded by the hidden truth), with the
measures of :mod:`.evaluate` and the Recall@K curves. Every method ranks *all* items of the corpus (no
domain filter). ``ann_recall`` reports how much of the exact (``IndexFlatIP``) top 10 / top 100 the
approximate index keeps, on the asked queries, for the zero-shot bi-encoder's vectors. The trained
methods (:mod:`.methods`) start from the shipped MiniLM, are seeded by ``config.seed`` (model
initialisation, shuffles, masking), and search exactly by dot product.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from consumers.retrieval.biencoder import dense_run, embed
from consumers.retrieval.bm25 import bm25_run
from consumers.retrieval.config import RetrievalConfig
from consumers.retrieval.corpus import RetrievalCorpus, electronics_corpus, world_corpus
from consumers.retrieval.evaluate import evaluate, recall_curve
from consumers.retrieval.index import build_faiss, overlap_at_k
from consumers.retrieval.methods import TRAINED, train_method
from consumers.retrieval.report import RetrievalResults, combine, write_results
from graph.errors import InputError
from graph.progress import StageProgress
from graph.store import GraphStore
from loaders.features import TextEncoder, make_encoder

METHOD_NAMES = {
    "bm25": "BM25 (bm25s)",
    "minilm": "MiniLM zero-shot (bi-encoder)",
    **{key: method.title for key, method in TRAINED.items()},
}
QUERY_SETS = ("test", "cold", "intent")
Found = dict[str, dict[str, float]]


def load_corpus(store: GraphStore | None, config: RetrievalConfig) -> RetrievalCorpus:
    """The corpus ``config`` names (the world needs ``store`` and ``config.world``)."""
    if config.corpus == "electronics":
        return electronics_corpus(seed=config.seed, shares=config.split)
    if store is None or config.world is None:
        raise InputError("the world corpus needs a store and the world directory (--world DIR)")
    return world_corpus(store, config.world, seed=config.seed, shares=config.split)


def run_seeds(
    store: GraphStore | None,
    config: RetrievalConfig,
    seeds: tuple[int, ...],
    encoder: TextEncoder | None = None,
    progress: StageProgress | None = None,
) -> RetrievalResults:
    """:func:`run` once per seed (the split and every trained model reseeded), combined."""
    if not seeds:
        raise InputError("give at least one seed (e.g. --seeds 0,1,2)")
    return combine([run(store, replace(config, seed=s), encoder, progress) for s in seeds])


def run(
    store: GraphStore | None,
    config: RetrievalConfig,
    encoder: TextEncoder | None = None,
    progress: StageProgress | None = None,
) -> RetrievalResults:
    """The table on ``config``'s corpus for ``config.seed`` (module doc). ``encoder`` overrides
    ``config.encoder``; ``progress`` reports the training stages."""
    corpus = load_corpus(store, config)
    sets = {name: q for name in QUERY_SETS if len(q := corpus.select(name))}
    asked = pd.concat(list(sets.values()), ignore_index=True).drop_duplicates("query")
    runs: dict[str, Found] = {}
    ann: dict[str, float] = {}
    ids, qids = list(corpus.items["item"]), list(asked["query"])
    if "bm25" in config.methods:
        runs["bm25"] = bm25_run(ids, list(corpus.items["text"]), qids, list(asked["text"]), config.depth)
    model_id = ""
    if "minilm" in config.methods:
        enc = encoder or make_encoder(config.encoder, config.item_precision)
        q_enc = encoder or make_encoder(config.encoder, config.precision)
        model_id = enc.model_id if enc.model_id == q_enc.model_id else f"{enc.model_id} / {q_enc.model_id}"
        ivec = embed(list(corpus.items["text"]), enc, config.cache_dir)
        qvec = embed(list(asked["text"]), q_enc, config.cache_dir)
        runs["minilm"] = dense_run(ids, ivec, qids, qvec, config.depth)
        if config.index_type != "flat":
            ann = _ann_recall(ivec, qvec, config.index_type, (10, config.depth))
    trained_meta: dict[str, str] = {}
    for key in (m for m in config.methods if m in TRAINED):
        runs[key], trained_meta[f"trained {key}"] = _trained_method_run(key, corpus, asked, config, progress)
    rows, curves = [], []
    for method, found in runs.items():
        for name, queries in sets.items():
            qrels = corpus.qrels_dict(queries)
            head = {"seed": config.seed, "method": METHOD_NAMES[method], "queries": name}
            rows.append(head | {"n_queries": len(queries)} | evaluate(found, qrels))
            curves += [head | {"k": k, "recall": r} for k, r in recall_curve(found, qrels).items()]
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
        "precision (items/queries)": f"{config.item_precision}/{config.precision}",
        "graph version": str(store.version()) if store is not None and corpus.name == "world" else "-",
    }
    meta.update(trained_meta)
    return RetrievalResults(corpus.name, pd.DataFrame(rows), ann, meta, pd.DataFrame(curves))


def _trained_method_run(
    key: str,
    corpus: RetrievalCorpus,
    asked: pd.DataFrame,
    config: RetrievalConfig,
    progress: StageProgress | None,
) -> tuple[Found, str]:
    """One trained method of :data:`.methods.TRAINED` (:func:`.methods.train_method`), then every item
    and asked query embedded (dot product, exact search)."""
    from consumers.retrieval.mural_train import TrainConfig
    from loaders.precision import resolve

    cfg = TrainConfig(
        pretrain_epochs=config.mural_epochs[0],
        finetune_epochs=config.mural_epochs[1],
        seed=config.seed,
        item_field=config.mural_item_field,
    )
    model, cfg, note = train_method(key, corpus, cfg, progress)
    texts = {
        "items": list(corpus.items[cfg.item_field].astype(str)),
        "queries": list(asked["text"].astype(str)),
    }
    wanted = {"items": resolve(config.item_precision), "queries": resolve(config.precision)}
    vectors: dict[str, np.ndarray] = {}
    for p in sorted(set(wanted.values()), key=lambda p: p != "fp32"):  # fp32 first: bf16 rounds weights
        model.serve_in(p)
        vectors |= {side: model.embed(texts[side]) for side, q in wanted.items() if q == p}
    ivec, qvec = vectors["items"], vectors["queries"]
    return dense_run(list(corpus.items["item"]), ivec, list(asked["query"]), qvec, config.depth), note


def _ann_recall(ivec: np.ndarray, qvec: np.ndarray, index_type: str, ks: tuple[int, ...]) -> dict[str, float]:
    k = min(max(ks), len(ivec))
    exact, approx = build_faiss(ivec, "flat"), build_faiss(ivec, index_type)
    _, e = exact.search(qvec, k)
    _, a = approx.search(qvec, k)
    as_pairs = [[[(str(j), 0.0) for j in row] for row in m] for m in (a, e)]
    return {f"{index_type} recall@{c}": overlap_at_k(as_pairs[0], as_pairs[1], min(c, k)) for c in ks}


__all__ = [
    "RetrievalConfig",
    "RetrievalResults",
    "load_corpus",
    "run",
    "run_seeds",
    "write_results",
]
