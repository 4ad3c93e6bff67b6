"""`mokg embed`: node texts into the embedding cache, on one process and in ranges on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graph.errors import InputError
from graph.store import StoreConfig, open_store
from loaders.embed import ShardedEncoder, node_texts, run_embed
from loaders.features import MiniLMEncoder, cached_embeddings

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LABELS = ("Intent", "Campaign")


def test_embed_fills_the_cache_once_and_the_sharded_encoder_gives_the_same_vectors(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    from graph.cluster import open_cluster

    cache = tmp_path / "cache"
    with open_store(StoreConfig(path=world_store[1])) as store:
        first = run_embed(store, MiniLMEncoder(), labels=LABELS, cache_dir=cache, out=tmp_path / "v.parquet")
        again = run_embed(store, MiniLMEncoder(), labels=LABELS, cache_dir=cache)
        ids, texts = node_texts(store, "Intent")
        with pytest.raises(InputError, match="has no text to embed"):
            run_embed(store, MiniLMEncoder(), labels=["User"], cache_dir=cache)
    assert first.labels["Intent"]["encoded"] == first.labels["Intent"]["with_text"] > 0
    assert again.total("encoded") == 0  # a rerun finds every text in the cache
    table = pd.read_parquet(tmp_path / "v.parquet")
    assert len(table) == first.total("nodes") and set(table["label"]) == set(LABELS)
    cached = np.stack(table["vector"][table["label"] == "Intent"].to_list())
    with open_cluster("local:2") as dask:
        sharded = ShardedEncoder("minilm", dask, ranges=3)
        vectors = cached_embeddings(texts, sharded, tmp_path / "sharded-cache")  # a cold cache: all encoded
    assert sharded.calls == 1 and vectors.shape == (len(ids), 384)
    assert np.abs(vectors - cached).max() < 1e-5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--label", "User"], "'User' has no text to embed"),
        (["--cluster", "local:zero"], "--cluster must be local:N"),
    ],
)
def test_embed_refuses_bad_input_in_one_line(
    world_store: tuple[Path, Path], args: list[str], words: str
) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MOKG_PATH": str(world_store[1])}
    done = subprocess.run(
        [sys.executable, "-m", "mokg", "embed", *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1
