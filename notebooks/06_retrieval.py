# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Multi-aspect retrieval (MURAL)
#
# Text queries → items, with the item's aspects (category levels, brand, domain) learned as part of
# the vectors: MURAL ("A Multi-Granularity-Aware Aspect Learning Model for Multi-Aspect Dense
# Retrieval", Sun et al., WSDM 2024, arXiv 2312.02538), in `consumers/retrieval/`. MURAL starts from
# the shipped MiniLM with one placeholder token per aspect after [CLS], pre-trains on the items
# (masked words + predicting each aspect's value) and fine-tunes on the search log (in-batch
# contrastive loss with a BM25 hard negative); an item's vector is its [CLS] vector plus a gated
# sum of the aspect vectors.
#
# This notebook sets a briefly trained MURAL beside BM25 and the zero-shot MiniLM on the world's
# search log, then answers a query from an index with the aspects each hit matched. Nothing is
# written to the store.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from consumers.retrieval.biencoder import dense_run
from consumers.retrieval.config import RetrievalConfig
from consumers.retrieval.evaluate import evaluate, recall_curve
from consumers.retrieval.methods import train_method
from consumers.retrieval.mural_train import TrainConfig
from consumers.retrieval.run import load_corpus, run
from consumers.retrieval.search import Searcher
from consumers.retrieval.serve import build_index
from graph.store import StoreConfig, open_store

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "3"))
STEPS = EPOCHS  # MURAL: optimiser steps per stage (batches of 32); a real run is 1+1 epochs or more
K = 5  # hits shown per query
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 80
started = time.perf_counter()
work = SCRATCH / "06_retrieval"
print(f"store {STORE}, world {WORLD}; MURAL {STEPS}+{STEPS} steps")

# %% [markdown]
# ## The corpus
#
# The world's items (title, category path, brand) and its search log: each query's graded relevance
# comes from what was clicked after it. The warm-domain queries are split 80/10/10 (seeded); the
# cold-start domain's queries are never trained on; `intent` queries name only a need ("what do I
# need for buying a car"), graded by the world's hidden truth.

# %%
store = open_store(StoreConfig(path=STORE))
config = RetrievalConfig(world=WORLD, methods=("bm25", "minilm"), index_type="flat")
corpus = load_corpus(store, config)
print(f"{len(corpus.items):,} items; queries per set:", corpus.queries["split"].value_counts().to_dict())
corpus.select("test")[["query", "text"]].head(3)

# %% [markdown]
# ## Baselines and a briefly trained MURAL
#
# `run` (behind `mokg eval retrieval`) ranks all items for every held-out query with BM25 and the
# zero-shot MiniLM bi-encoder. MURAL is trained here on the same train split for only a few steps
# per stage (`max_steps`), then scored the same way: a smoke test of the pipeline, not of the method
# (a few steps barely move MiniLM; expect it near or below the zero-shot model).
#
# The full tables (MURAL at 1+1 and 1+3 epochs, BIBERT, MTBERT, MADRAL and MURAL's ablations, on the
# electronics listings and on the world, 3 seeds) are in [docs/retrieval.md](../retrieval.md) with
# their commands, e.g. `mokg eval retrieval --corpus world --world W --methods
# bm25,minilm,bibert,mural,mtbert,madral --mural-epochs 1,1 --seeds 0 --out results/`.

# %%
baselines = run(store, config)

# %%
train = TrainConfig(max_steps=STEPS, item_field="text", seed=0)
mural, train, note = train_method("mural", corpus, train)
print("MURAL:", note)
sets = {name: q for name in ("test", "cold", "intent") if len(q := corpus.select(name))}
asked = pd.concat(list(sets.values())).drop_duplicates("query")
found = dense_run(
    list(corpus.items["item"]),
    mural.embed(list(corpus.items["text"])),
    list(asked["query"]),
    mural.embed(list(asked["text"])),
    config.depth,
)
name = f"MURAL ({STEPS}+{STEPS} steps)"
rows, curves = [], []
for which, queries in sets.items():
    qrels = corpus.qrels_dict(queries)
    rows.append({"method": name, "queries": which, "n_queries": len(queries)} | evaluate(found, qrels))
    curves += [
        {"method": name, "queries": which, "k": k, "recall": r} for k, r in recall_curve(found, qrels).items()
    ]
table = pd.concat([baselines.table.drop(columns="seed"), pd.DataFrame(rows)], ignore_index=True)
table[["method", "queries", "n_queries", "Recall@50", "NDCG@10", "MRR"]].round(3)

# %%
curve = pd.concat([baselines.curves, pd.DataFrame(curves)], ignore_index=True)
fig, ax = plt.subplots(figsize=(6, 3.5))
for method, part in curve[curve["queries"] == "test"].groupby("method", sort=False):
    ax.plot(part["k"], part["recall"], marker="o", ms=3, label=method)
ax.set(xscale="log", xlabel="K", ylabel="Recall@K", title="held-out warm-domain queries")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Search
#
# `build_index` (behind `mokg train retrieval`) embeds every item of the store into a faiss index
# folder; `Searcher` (behind `mokg search`) answers from the folder alone. Each hit shows its aspect
# values and the ones that share a word with the query (`matched`). This index is the zero-shot
# MiniLM (seconds); `mokg train retrieval --method mural --world W` builds a MURAL index instead,
# whose `mokg search --explain` also splits each score into one part per aspect.

# %%
meta = build_index(store, work / "index", method="minilm", index_type="flat")
store.close()
searcher = Searcher(work / "index")
query = str(corpus.select("test")["text"].iloc[0])
answer = searcher.search([query], k=K)[0]
print(f"{query!r} ({meta['n_items']:,} items, {meta['model_id']}):")
for rank, hit in enumerate(answer.hits, 1):
    matched = "; ".join(f"{m['aspect']} {m['value']!r}" for m in hit.matched) or "-"
    print(f"{rank}  {hit.score:.3f}  {hit.title}  [{' > '.join(hit.category_path)} | {hit.brand or '-'}]")
    print(f"     matched: {matched}")

# %%
print(f"{time.perf_counter() - started:.0f} s")
