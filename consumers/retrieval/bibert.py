"""BIBERT: the shipped MiniLM fine-tuned as a plain bi-encoder, the baseline that separates plain
fine-tuning from MURAL's aspect learning.

The same starting point, data and fine-tuning as MURAL (:mod:`.mural_train`), less the aspects:

* input ``[CLS] text [SEP]`` (no aspect placeholders: :class:`.mural.Mural` with
  ``placement="cls"``, whose aspect heads are then never used);
* representation ``h_cls``, the encoder's last hidden state at ``[CLS]`` (no pooler layer, not
  normalised), the [CLS] side of MURAL's fusion; relevance is the dot product;
* no MLM or aspect pre-training and no aspect loss in fine-tuning: only the in-batch contrastive loss
  (Eq. C) on the same :func:`.mural_train.training_triples`, with MURAL's temperature, epochs, batch
  size, learning rate and seed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from consumers.retrieval.corpus import RetrievalCorpus
from consumers.retrieval.mural import Mural, MuralConfig, load_mural
from consumers.retrieval.mural_train import TrainConfig, finetune
from graph.progress import StageProgress

BIBERT_CONFIG = MuralConfig(placement="cls")


def load_bibert(items: Any, path: Any = None, seed: int = 0) -> Mural:
    """BIBERT from a local BERT folder (default: the shipped all-MiniLM-L6-v2), offline."""
    return load_mural(items, BIBERT_CONFIG, path, seed)


def finetune_bibert(
    model: Mural, corpus: RetrievalCorpus, cfg: TrainConfig, progress: StageProgress | None = None
) -> dict[str, list[float]]:
    """MURAL's fine-tuning without the aspect loss (``cfg.finetune_aspect`` is ignored)
    → {"loss", "contrastive", "aspect"} per step (the aspect column all zeros)."""
    if model.n_placeholders:
        raise ValueError("BIBERT has no aspect placeholders (load it with load_bibert)")
    return finetune(model, corpus, replace(cfg, finetune_aspect=False), progress, stage="bibert finetune")
