"""Batch text embeddings of the store's nodes (``mokg embed``), on one process or a Dask cluster.

Every node with text (:data:`loaders.features.TEXT_FIELDS`: names and descriptions, query texts,
thoughts) is encoded once into the embedding cache that training reads
(:func:`loaders.features.cached_embeddings`, keyed by model and text), so a later
``mokg train peace --features`` or ``mokg eval audience`` finds every vector there; ``out`` also
writes them as Parquet (label, id, vector).

With a cluster (:mod:`graph.cluster`), :class:`ShardedEncoder` is the encoder: the texts the cache
lacks are cut into contiguous ranges, each worker encodes its range with its own copy of the model
(loaded once per worker process), and the driver puts the ranges back in order and is the only
writer of the cache. A range is a pure function of its texts, so a retried range gives the same
vectors; they equal the single process's up to float rounding of differently padded batches
(``tests/test_embed.py`` checks 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from graph import files
from graph.errors import InputError
from loaders.features import (
    TEXT_FIELDS,
    CountingEncoder,
    TextEncoder,
    cached_embeddings,
    make_encoder,
    node_text,
    text_columns,
)

if TYPE_CHECKING:
    from distributed import Client

    from graph.store import GraphStore

_WORKER_ENCODERS: dict[str, TextEncoder] = {}  # per worker process: the model is loaded once


def encode_range(encoder_name: str, texts: Sequence[str]) -> np.ndarray:
    """Worker side: ``texts`` encoded by the registered encoder ``encoder_name`` ([n, dim])."""
    if encoder_name not in _WORKER_ENCODERS:
        _WORKER_ENCODERS[encoder_name] = make_encoder(encoder_name)
    return _WORKER_ENCODERS[encoder_name].encode(list(texts))


class ShardedEncoder:
    """A :class:`~loaders.features.TextEncoder` whose ``encode`` runs in ranges on Dask workers.

    Args:
        encoder_name: a registered encoder (:data:`loaders.features.ENCODERS`), built on each worker.
        client: a connected Dask client (:func:`graph.cluster.open_cluster`).
        ranges: how many ranges a call is cut into (default: 2 per worker).
    """

    def __init__(self, encoder_name: str, client: Client, ranges: int | None = None) -> None:
        from graph.cluster import worker_count

        self._local = make_encoder(encoder_name)  # model_id and dim only: the model is not loaded
        self.encoder_name, self.client = encoder_name, client
        self.ranges = ranges or 2 * worker_count(client)
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._local.model_id

    @property
    def dim(self) -> int:
        return self._local.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        cuts = np.array_split(np.arange(len(texts)), min(self.ranges, len(texts)))
        parts = [[texts[i] for i in cut] for cut in cuts if len(cut)]
        futures = self.client.map(
            encode_range, [self.encoder_name] * len(parts), parts, retries=1, pure=False
        )
        vectors = np.concatenate([np.asarray(v, np.float32) for v in self.client.gather(futures)])  # type: ignore[no-untyped-call]
        return vectors.reshape(len(texts), self.dim)


@dataclass
class EmbedReport:
    """Per label: nodes, nodes with text, and how many texts the cache lacked before the run."""

    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    out: Path | None = None

    def total(self, key: str) -> int:
        return sum(v[key] for v in self.labels.values())


def node_texts(store: GraphStore, label: str) -> tuple[list[str], list[str]]:
    """(ids, texts) of every ``label`` node (an empty text where the node has none)."""
    frame = store.node_table(label, ["id", *text_columns(label)])
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    return [str(r["id"]) for r in rows], [node_text(label, r) or "" for r in rows]


CHUNK = 10_000
"""Texts per call of the cache: each chunk's vectors are cached as soon as they are encoded, so a
killed run resumes where it stopped (the chunks done come from the cache)."""


def run_embed(
    store: GraphStore,
    encoder: TextEncoder,
    *,
    labels: Sequence[str] = (),
    cache_dir: Path | None = None,
    out: Path | None = None,
    chunk: int = CHUNK,
    progress: Callable[[str, int, int], None] | None = None,
) -> EmbedReport:
    """Encode every text of ``labels`` (default: every label with text) into the cache, ``chunk``
    texts at a time, calling ``progress(label, texts done now, texts of the label)`` before the
    first and after each;
    with ``out``, also write (label, id, vector) as Parquet (written aside, renamed into place)."""
    chosen = list(labels) or [label for label in TEXT_FIELDS if label in store.schema.labels]
    unknown = [label for label in chosen if label not in TEXT_FIELDS]
    if unknown:
        raise InputError(f"--label {unknown[0]!r} has no text to embed; choose from {', '.join(TEXT_FIELDS)}")
    if out is not None:
        files.target(out)
    report, frames = EmbedReport(out=out), []
    for label in chosen:
        ids, texts = node_texts(store, label)
        calls = CountingEncoder(encoder)
        parts = [np.zeros((0, encoder.dim), np.float32)]
        if progress is not None:
            progress(label, 0, len(texts))  # the stage starts before its first chunk
        for start in range(0, len(texts), chunk):
            parts.append(cached_embeddings(texts[start : start + chunk], calls, cache_dir))
            if progress is not None:
                progress(label, len(parts[-1]), len(texts))
        vectors = np.concatenate(parts)
        report.labels[label] = {
            "nodes": len(ids),
            "with_text": sum(bool(t) for t in texts),
            "encoded": calls.texts,
        }
        if out is not None and ids:
            frames.append(pd.DataFrame({"label": label, "id": ids, "vector": list(vectors)}))
    if out is not None:
        table = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=["label", "id", "vector"])
        )
        files.write_file(out, lambda tmp: table.to_parquet(tmp, index=False))
    return report
