"""Serving retrieval: the item index ``mokg train retrieval`` builds and ``mokg search`` answers from.

Models (``method``), one index folder layout (:mod:`.index`):

* ``minilm``: the zero-shot bi-encoder (:mod:`.biencoder`; unit vectors, cosine);
* ``mural``: MURAL (:mod:`.mural`) from a local BERT folder (default: the shipped MiniLM),
  pre-trained on the items and fine-tuned on the corpus's queries (:mod:`.mural_train`);
  items and queries are its fused vectors ``z = h_cls + Σ_a w_a h_a``, relevance the dot product;
* ``bibert``: the same model fine-tuned without aspects (:mod:`.bibert`), ``z = h_cls``;
* any other trained method of :data:`.methods.TRAINED` (MTBERT, MADRAL, MURAL's ablations), trained
  the way ``mokg eval retrieval`` trains it (:func:`.methods.train_method`).

A trained index also holds the model: ``model.safetensors`` (``Mural.state_dict()``), ``model.json``
(the :class:`.mural.MuralConfig`, the item field, the training settings) and ``encoder/`` (the
encoder's ``config.json`` and its tokenizer, placeholders included). The manifest's ``model_hash``
is the sha256 of ``model.safetensors``, checked on loading. The model is rebuilt from ``encoder/``
and the aspect vocabulary of the index's own items (deterministic: :func:`.aspects.build_vocab`),
then the weights are loaded: the folder needs nothing else.

Training corpus: the world's search log (:func:`.corpus.world_corpus`, every warm-domain query
trains, the cold domain's never do) when the world directory is given; otherwise the store's own
``Query -CLICKED-> Item`` edges (:func:`.corpus.store_corpus`), if it has any.

Searching the folder: :mod:`.search`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from consumers.retrieval.config import METHODS as EVAL_METHODS
from consumers.retrieval.corpus import RetrievalCorpus, item_text, store_corpus, store_items, world_corpus
from consumers.retrieval.index import MODEL_DIR, MODEL_JSON, WEIGHTS, save_index
from consumers.retrieval.index import _claim as index_claim
from graph import files
from graph.errors import InputError
from graph.progress import StageProgress
from graph.store import GraphStore
from loaders.features import TextEncoder, make_encoder

if TYPE_CHECKING:
    from consumers.retrieval.mural import Mural, MuralConfig
    from consumers.retrieval.mural_train import TrainConfig

METHODS = tuple(m for m in EVAL_METHODS if m != "bm25")  # minilm and every trained method


# -- building ----------------------------------------------------------------------------------------
def training_corpus(store: GraphStore, world: Path | None, seed: int = 0) -> RetrievalCorpus:
    """The corpus a trained index learns from (module doc)."""
    if world is not None:
        return world_corpus(store, world, seed=seed, shares=(1.0, 0.0, 0.0))
    return store_corpus(store, seed=seed)


def build_index(
    store: GraphStore,
    out: Path,
    *,
    method: str = "minilm",
    index_type: str = "hnsw",
    world: Path | None = None,
    encoder_name: str = "minilm",
    encoder: TextEncoder | None = None,
    cache_dir: Path | None = None,
    train: TrainConfig | None = None,
    mural: MuralConfig | None = None,
    base_model: Path | None = None,
    progress: StageProgress | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Embed every item of ``store`` with ``method``'s model and save the index folder (module doc).

    minilm: ``encoder`` (default: the registered ``encoder_name``), text = title, category path,
    brand. mural/bibert: trained first on :func:`training_corpus` with ``train`` (epochs, batch,
    ``max_steps``; BIBERT has no pre-training) from ``base_model`` (a local BERT folder; None: the
    shipped MiniLM); ``mural`` overrides MURAL's default :class:`.mural.MuralConfig`. ``precision``
    (``fp32``, ``bf16``, ``auto``): the items' encoding precision, recorded in the manifest (a trained
    model is trained and saved in fp32 either way).
    Returns the manifest's fields with ``n_items``, ``index_type`` and, if trained, ``training``.
    """
    if method not in METHODS:
        raise InputError(f"unknown retrieval method {method!r}; choose from {', '.join(METHODS)}")
    if method == "minilm":
        return _build_minilm(
            store, out, index_type, encoder or make_encoder(encoder_name, precision), encoder_name, cache_dir
        )
    from loaders.precision import resolve

    return _build_trained(
        store, out, method, index_type, world, train, mural, base_model, progress, resolve(precision)
    )


def _build_minilm(
    store: GraphStore,
    out: Path,
    index_type: str,
    enc: TextEncoder,
    encoder_name: str,
    cache_dir: Path | None,
) -> dict[str, Any]:
    from consumers.retrieval.biencoder import embed

    items = store_items(store)
    if items.empty:
        raise InputError("the store has no items to index")
    vectors = embed(list(items["text"]), enc, cache_dir)
    meta = {
        "graph_version": str(store.version()),
        "model": "minilm",
        "encoder": encoder_name,
        "model_id": enc.model_id,
        "precision": str(getattr(enc, "precision", "fp32")),
        "method": "zero-shot bi-encoder (cosine)",
        "corpus": "store",
    }
    save_index(out, vectors, items, index_type, meta)
    return meta | {"n_items": len(items), "index_type": index_type}


def _build_trained(
    store: GraphStore,
    out: Path,
    method: str,
    index_type: str,
    world: Path | None,
    train: TrainConfig | None,
    mural: MuralConfig | None,
    base_model: Path | None,
    progress: StageProgress | None,
    precision: str,
) -> dict[str, Any]:
    from safetensors.torch import save as st_save

    from consumers.retrieval.methods import TRAINED, train_method
    from consumers.retrieval.mural_train import TrainConfig

    files.check_folder(out, index_claim)  # refuse a foreign folder before minutes of training
    if base_model is not None and not (Path(base_model) / "config.json").is_file():
        raise InputError(f"--base-model {base_model} is not a BERT folder (no config.json)")
    cfg = train or TrainConfig()
    if cfg.item_field not in ("text", "title"):
        raise InputError(f"the item field is text or title, not {cfg.item_field!r}")
    corpus = training_corpus(store, world, cfg.seed)
    model, cfg, note = train_method(method, corpus, cfg, progress, base_model, mural)
    items = corpus.items
    blob = st_save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})  # fp32
    vectors = model.serve_in(precision).embed(item_texts(items, cfg.item_field))
    base_id = _base_id(base_model)
    n_train = int((corpus.queries["split"] == "train").sum())
    meta = {
        "graph_version": str(store.version()),
        "model": method,
        "encoder": method,
        "model_id": f"{method.upper()} from {base_id}",
        "model_hash": hashlib.sha256(blob).hexdigest(),
        "precision": precision,
        "method": f"{TRAINED[method].title}: "
        + ("aspect-fused vectors" if model.gate is not None else "[CLS] vectors")
        + ", dot product",
        "aspects": list(model.vocab.names),
        "item_field": cfg.item_field,
        "corpus": corpus.name,
        "training": f"{corpus.name} corpus, {n_train} train queries; {note}",
    }
    described = {
        "mural_config": asdict(model.config),
        "item_field": cfg.item_field,
        "base_model": base_id,
        "train_config": asdict(cfg),
    }

    def write_model(tmp: Path) -> None:
        (tmp / WEIGHTS).write_bytes(blob)
        (tmp / MODEL_JSON).write_text(json.dumps(described, indent=2, default=str))
        model.encoder.config.save_pretrained(tmp / MODEL_DIR)
        model.tokenizer.save_pretrained(tmp / MODEL_DIR)

    save_index(out, vectors, items, index_type, meta, write_model)
    return meta | {"n_items": len(items), "index_type": index_type}


def _base_id(base_model: Path | None) -> str:
    if base_model is not None:
        return str(base_model)
    from loaders.features import MiniLMEncoder

    return MiniLMEncoder().model_id


def item_texts(items: pd.DataFrame, item_field: str) -> list[str]:
    """What the model read of each item: ``title``, or ``text`` (title, category path, brand)."""
    if item_field == "title":
        return [str(t) for t in items["title"]]
    return [
        item_text(str(t), [str(c) for c in p], str(b or ""))
        for t, p, b in zip(items["title"], items["category_path"], items["brand"], strict=True)
    ]


# -- loading -----------------------------------------------------------------------------------------
def load_model(folder: Path, manifest: dict[str, Any], items: pd.DataFrame) -> Mural:
    """The MURAL/BIBERT model of a trained index folder, in eval mode (module doc)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from consumers.retrieval.aspects import build_vocab
    from consumers.retrieval.mural import Mural, MuralConfig

    folder = Path(folder)
    weights, described, enc_dir = folder / WEIGHTS, folder / MODEL_JSON, folder / MODEL_DIR
    missing = [p.name for p in (weights, described, enc_dir / "config.json") if not p.exists()]
    if missing:
        raise InputError(
            f"{folder} is a {manifest.get('model')} index without its model ({', '.join(missing)} "
            "missing); rebuild it with `mokg train retrieval`"
        )
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != manifest.get("model_hash"):
        raise InputError(
            f"{weights} does not match the manifest's model hash (file changed after indexing?); "
            "rebuild the index with `mokg train retrieval`"
        )
    raw = json.loads(described.read_text())["mural_config"]
    known = {f.name for f in fields(MuralConfig)}
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    cfg = MuralConfig(**kw)
    tokenizer = AutoTokenizer.from_pretrained(enc_dir, local_files_only=True)
    encoder = AutoModel.from_config(  # type: ignore[no-untyped-call]
        AutoConfig.from_pretrained(enc_dir, local_files_only=True)
    )
    model = Mural(encoder, tokenizer, build_vocab(items, tokenizer, cfg.granularities), cfg)
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise InputError(f"{weights} does not fit the model rebuilt from {folder}: {exc}") from None
    model.eval()
    return model


__all__ = ["METHODS", "build_index", "item_texts", "load_model", "training_corpus"]
