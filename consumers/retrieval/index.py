"""Item vectors in a faiss index, saved with a manifest, loaded and searched by ``mokg search``.

Three index types: ``flat`` (``IndexFlatIP``, exact inner product), ``hnsw`` (``IndexHNSWFlat``
over inner product, M=32, efConstruction=200, efSearch=128: approximate) and ``ivf``
(``IndexIVFFlat`` over inner product: ``nlist = round(√N)`` lists, at most 4,096 and N / 39,
k-means trained on at most 64 vectors per list, seeded; ``nprobe = max(8, nlist / 64)`` lists
searched: approximate; `bench/retrieval.py` measures both against the exact index). Vectors are unit length
(:mod:`.biencoder`), so scores are cosines; a trained model's (MURAL, BIBERT) are not: dot products.

Layout of an index folder (written aside and swapped in whole by :func:`graph.files.write_folder`;
a non-empty folder that is not an index folder is never replaced):

- ``manifest.json``: ``kind`` ("mokg-retrieval-index"), ``index_type``, ``dim``, ``graph_version``,
  ``encoder`` (its registry name in ``loaders.features.ENCODERS``), ``model_id``, ``precision``
  (the items' encoding precision, ``fp32`` or ``bf16``; absent in older folders: fp32), ``corpus``,
  ``item_ids`` (row order of the index), ``written_at``;
- ``items.faiss``: the faiss index;
- ``items.parquet``: one row per item: ``item``, ``title``, ``domain``, ``category_path``, ``brand``
  (what a search answer shows).
- trained models (MURAL, BIBERT) only: ``model.safetensors``, ``model.json`` and ``encoder/``
  (:mod:`.serve`), with ``model`` and ``model_hash`` in the manifest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import pandas as pd

from graph import files
from graph.errors import InputError

faiss: Any = _faiss  # its bundled stubs lack the SWIG search-parameter classes (SearchParametersHNSW)

KIND = "mokg-retrieval-index"
MANIFEST = "manifest.json"
WEIGHTS, MODEL_JSON, MODEL_DIR = "model.safetensors", "model.json", "encoder"  # trained models only
OURS = (MANIFEST, "items.faiss", "items.parquet", WEIGHTS, MODEL_JSON)
SHOWN = ["item", "title", "domain", "category_path", "brand"]
HNSW_M, EF_CONSTRUCTION, EF_SEARCH = 32, 200, 128
MAX_LISTS = 4096


def ivf_lists(n: int) -> tuple[int, int]:
    """(nlist, nprobe) of the ``ivf`` index over ``n`` vectors (module doc)."""
    nlist = max(1, min(MAX_LISTS, round(n**0.5), n // 39))  # faiss wants ≥ 39 training points a list
    return nlist, min(nlist, max(8, nlist // 64))


def build_faiss(vectors: np.ndarray, index_type: str) -> Any:
    """A faiss index over ``vectors`` [N, d] (inner product): ``flat``, ``hnsw`` or ``ivf``."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if index_type == "flat":
        index = faiss.IndexFlatIP(x.shape[1])
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.hnsw.efSearch = EF_SEARCH
    elif index_type == "ivf":
        nlist, nprobe = ivf_lists(len(x))
        index = faiss.index_factory(x.shape[1], f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 0
        sample = np.random.default_rng(0).permutation(len(x))[: 64 * nlist]
        index.train(x[np.sort(sample)])
        index.nprobe = nprobe
    else:
        raise InputError(f"unknown index type {index_type!r}; choose flat, hnsw or ivf")
    index.add(x)
    return index


def _claim(root: Path) -> str | None:
    path = root / MANIFEST
    try:
        ok = path.is_file() and json.loads(path.read_text()).get("kind") == KIND
    except (OSError, ValueError):
        ok = False
    if not ok:
        return "it is not a retrieval index folder (no manifest.json of `mokg train retrieval`)"
    foreign = files.foreign_files(root, lambda rel: rel in OURS or rel.startswith(f"{MODEL_DIR}/"))
    return f"it holds {foreign[0]!r}, which is not part of a retrieval index" if foreign else None


def save_index(
    out: Path,
    vectors: np.ndarray,
    items: pd.DataFrame,
    index_type: str,
    meta: dict[str, Any],
    write_model: Callable[[Path], object] | None = None,
) -> Path:
    """Write an index folder (module doc) for ``items`` (rows aligned with ``vectors``).

    ``meta`` should hold ``graph_version``, ``encoder``, ``model_id`` and ``corpus``;
    ``write_model(tmp)`` writes a trained model's files (``WEIGHTS``, ``MODEL_JSON``, ``MODEL_DIR/``)
    into the folder being written.
    """
    if len(items) != len(vectors):
        raise ValueError(f"{len(items)} items but {len(vectors)} vectors")
    index = build_faiss(vectors, index_type)
    manifest = {
        "kind": KIND,
        **meta,
        "index_type": index_type,
        "dim": int(vectors.shape[1]),
        "n_items": len(items),
        "item_ids": [str(i) for i in items["item"]],
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    def write(tmp: Path) -> None:
        faiss.write_index(index, str(tmp / "items.faiss"))
        items[SHOWN].to_parquet(tmp / "items.parquet", index=False)
        if write_model is not None:
            write_model(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))

    return files.write_folder(out, write, _claim)


@dataclass
class ItemIndex:
    """A loaded index folder."""

    manifest: dict[str, Any]
    index: Any
    items: pd.DataFrame

    @property
    def item_ids(self) -> list[str]:
        return list(self.manifest["item_ids"])

    def search(self, vectors: np.ndarray, k: int, domain: str | None = None) -> list[list[tuple[str, float]]]:
        """Per query vector, its top ``k`` (item id, score), best first; ``domain``: only its items."""
        x = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        params = None
        if domain is not None:
            rows = np.flatnonzero(self.items["domain"].to_numpy() == domain).astype(np.int64)
            if len(rows) == 0:
                known = ", ".join(sorted(self.items["domain"].unique()))
                raise InputError(f"no item of domain {domain!r} in the index; its domains: {known}")
            sel = faiss.IDSelectorBatch(rows)
            if self.manifest["index_type"] == "hnsw":
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(EF_SEARCH, k))
            elif self.manifest["index_type"] == "ivf":
                params = faiss.SearchParametersIVF(sel=sel, nprobe=int(self.index.nprobe))
            else:
                params = faiss.SearchParameters(sel=sel)
        elif self.manifest["index_type"] == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, k))
        k = min(k, self.index.ntotal)
        scores, rows_found = self.index.search(x, k, params=params)
        ids = self.item_ids
        return [
            [(ids[j], float(s)) for j, s in zip(r, sc, strict=True) if j >= 0]
            for r, sc in zip(rows_found, scores, strict=True)
        ]


def load_index(folder: Path) -> ItemIndex:
    """Read an index folder written by :func:`save_index`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(
            f"{folder} holds no retrieval index; build one with `mokg train retrieval --out DIR`"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("kind") != KIND:
        raise InputError(
            f"{folder} is not a retrieval index (its manifest is of kind {manifest.get('kind')!r})"
        )
    index = faiss.read_index(str(Path(folder) / "items.faiss"))
    items = pd.read_parquet(Path(folder) / "items.parquet")
    if index.ntotal != len(manifest["item_ids"]) or len(items) != index.ntotal:
        raise InputError(
            f"{folder} is inconsistent: the index, items and manifest disagree on the item count"
        )
    return ItemIndex(manifest, index, items)


def overlap_at_k(
    approx: list[list[tuple[str, float]]], exact: list[list[tuple[str, float]]], k: int
) -> float:
    """Mean share of the exact top ``k`` that the approximate search also returns (ANN recall@k)."""
    shares = [
        len({i for i, _ in a[:k]} & {i for i, _ in e[:k]}) / max(1, len(e[:k]))
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(shares)) if shares else float("nan")
