"""Real item vectors of a generated world for the scale phase of `bench/retrieval.py`
(``--scale-real-world DIR``).

The items are read the way the retrieval corpus reads a store's
(:func:`consumers.retrieval.corpus.store_items`: title, category path from the leaf up, brand), here
straight from the world's visible node and edge tables (:class:`WorldTables`; what `mokg ingest`
would load), so no store is needed. Every item text is encoded with the MiniLM in ``bf16``
(:mod:`loaders.precision`; fp32 runs at ~100 items/s per core: an hour for 200,000) through
:func:`consumers.retrieval.biencoder.embed`, cached under its ``+bf16`` keys (a rerun reads them
back), and so are a seeded sample of the world's distinct query texts. Encoding throughput is
timed on a seeded sample of item texts in both precisions, each into a fresh cache.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

SAMPLE = 1000  # item texts timed per precision


class WorldTables:
    """The visible tables of a world directory, read like a store's ``node_table`` / ``edge_table``."""

    def __init__(self, world: Path) -> None:
        from loaders.world.layout import WorldDir

        self.world = WorldDir(Path(world))

    def node_table(self, label: str, columns: Sequence[str] = ()) -> pd.DataFrame:
        return pd.read_parquet(self.world.visible("nodes", f"{label}.parquet"), columns=["id", *columns])

    def edge_table(self, key: tuple[str, str, str], columns: Sequence[str] = ()) -> pd.DataFrame:
        path = self.world.visible("edges", "__".join(key) + ".parquet")
        return pd.read_parquet(path, columns=["head", "tail", *columns])


def world_vectors(
    world: Path, n_queries: int, seed: int, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(item vectors [N, 384], their leaf categories [N], query vectors [Q, 384], facts) of ``world``."""
    from consumers.retrieval.biencoder import embed
    from consumers.retrieval.corpus import store_items
    from graph.errors import InputError
    from loaders.features import make_encoder

    tables = WorldTables(world)
    if not tables.world.visible("nodes", "Item.parquet").is_file():
        raise InputError(
            f"--scale-real-world {world} is not a world directory (no visible/nodes/Item.parquet)"
        )
    t0 = time.perf_counter()
    items = store_items(cast(Any, tables))
    read_s = time.perf_counter() - t0
    texts = list(items["text"])
    rng = np.random.default_rng(seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(SAMPLE, len(texts)), replace=False)]
    bf16 = make_encoder("minilm", "bf16")
    rates = {}
    for p in ("fp32", "bf16"):
        enc = bf16 if p == "bf16" else make_encoder("minilm")
        enc.encode(["warm-up"])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            embed(sample, enc, Path(tmp))
            rates[p] = len(sample) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    vectors = embed(texts, bf16, cache_dir)
    encode_s = time.perf_counter() - t0
    queries = pd.read_parquet(tables.world.visible("nodes", "Query.parquet"), columns=["text"])["text"]
    distinct = sorted({str(t) for t in queries if str(t).strip()})
    asked = [
        distinct[i] for i in np.sort(rng.choice(len(distinct), min(n_queries, len(distinct)), replace=False))
    ]
    qvec = embed(asked, bf16, cache_dir)
    facts = {
        "world": str(world),
        "items": len(items),
        "distinct_texts": int(items["text"].nunique()),
        "queries": len(asked),
        "model_id": bf16.model_id,
        "read_items_s": read_s,
        "encode_all_s": encode_s,
        "sample_items_per_s": rates,
        "sample_size": len(sample),
    }
    return vectors, items["leaf"].to_numpy(), qvec, facts
