"""`mokg embed`: node texts into the embedding cache, on one process and in ranges on a Dask cluster."""

from __future__ import annotations

from collections.abc import Sequence
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


class _Flaky:
    """A deterministic fake encoder (a text's hash as its vector) that dies on call ``fail_on``."""

    model_id, dim = "fake-hash-encoder", 8

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on, self.calls, self.texts = fail_on, 0, 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import hashlib

        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("killed")
        self.texts += len(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], np.uint8) for t in texts]
        return np.asarray(rows, np.float32) / 255.0


def test_a_killed_embed_resumes_from_the_chunks_it_cached(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    cache, seen = tmp_path / "cache", list[tuple[str, int, int]]()
    with open_store(StoreConfig(path=world_store[1])) as store:
        with pytest.raises(RuntimeError, match="killed"):
            run_embed(store, _Flaky(fail_on=3), labels=["Intent"], cache_dir=cache, chunk=50)
        resumed = _Flaky()
        report = run_embed(
            store, resumed, labels=["Intent"], cache_dir=cache, chunk=50, progress=lambda *a: seen.append(a)
        )
        whole = run_embed(store, _Flaky(), labels=["Intent"], cache_dir=tmp_path / "cold", chunk=10_000)
    texts = report.labels["Intent"]["with_text"]
    assert texts > 100 and report.total("encoded") == texts - 100  # two chunks of 50 came from the cache
    assert whole.total("encoded") == texts  # one chunk: no cache, everything encoded
    assert [n for _, n, _ in seen] == [0] + [min(50, texts - i) for i in range(0, texts, 50)]
    assert {(label, total) for label, _, total in seen} == {("Intent", texts)}
