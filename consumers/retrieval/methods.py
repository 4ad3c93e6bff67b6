"""The trained retrievers of the evaluation: MURAL, its ablations, and the baselines it is compared
against (BIBERT, MTBERT, MADRAL), each one :class:`TrainedMethod` over :class:`.mural.Mural`.

Every one starts from the shipped MiniLM, reads the same item field, and is trained on the same
triples (:func:`.mural_train.training_triples`) with the same epochs, batch size, learning rate and
seed; they differ only in their :class:`.mural.MuralConfig` and in whether the aspects are learned:

* **BIBERT**: no aspects, no pre-training; in-batch contrastive fine-tuning only (``h_cls``).
* **MURAL** (arXiv:2312.02538): placeholders, value embeddings from the value's words at three
  granularities, MLM + aspect pre-training, contrastive + aspect fine-tuning, [CLS]-weighted fusion.
* **MTBERT**: [CLS] predicts each aspect's value *id* (a free class table), same two stages.
* **MADRAL** (Kong et al., KDD 2022): aspect tokens after [CLS] that attend over the text, predicting
  value *ids*, fused from [CLS], same two stages.
* MURAL's ablations, as the issue asks: ``mural-nomlm`` (pre-training without MLM), ``mural-value``
  (one granularity: the whole value), ``mural-cls`` (aspects predicted from [CLS], no placeholders);
  and one diagnostic of ours, ``mural-clsvec``: MURAL with its placeholders and losses, but the
  [CLS] vector as the representation (no fusion), to separate the fusion from the aspect learning;
  and ``mural-scaled``, MURAL whose aspect sum enters the vector through a learned scale that starts
  at 0 (our attempt to keep the fusion without its cost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from consumers.retrieval.bibert import BIBERT_CONFIG
from consumers.retrieval.corpus import RetrievalCorpus
from consumers.retrieval.mural import Mural, MuralConfig
from consumers.retrieval.mural_train import TrainConfig
from graph.errors import InputError
from graph.progress import StageProgress


@dataclass(frozen=True)
class TrainedMethod:
    """A trained retriever: its table name, model switches, and whether it learns the aspects
    (pre-training ``L_mlm + λ L_asp`` and ``λ L_asp`` in fine-tuning) or only fine-tunes (BIBERT)."""

    title: str
    model: MuralConfig
    aspects: bool = True


TRAINED: dict[str, TrainedMethod] = {
    "bibert": TrainedMethod("BIBERT (MiniLM fine-tuned)", BIBERT_CONFIG, aspects=False),
    "mural": TrainedMethod("MURAL (MiniLM, pre-trained + fine-tuned)", MuralConfig()),
    "mtbert": TrainedMethod(
        "MTBERT ([CLS] predicts value ids)",
        MuralConfig(placement="cls", granularities=("value",), value_embedding="ids"),
    ),
    "madral": TrainedMethod(
        "MADRAL (aspect tokens, value ids)", MuralConfig(granularities=("value",), value_embedding="ids")
    ),
    "mural-nomlm": TrainedMethod("MURAL w/o MLM", MuralConfig(mlm=False)),
    "mural-value": TrainedMethod("MURAL, value granularity only", MuralConfig(granularities=("value",))),
    "mural-cls": TrainedMethod("MURAL, aspects in [CLS]", MuralConfig(placement="cls")),
    "mural-clsvec": TrainedMethod("MURAL, [CLS] vector (no fusion)", MuralConfig(fusion="cls")),
    "mural-scaled": TrainedMethod("MURAL, fusion scaled from 0", MuralConfig(fusion="scaled")),
}
ABLATIONS = ("mural-nomlm", "mural-value", "mural-cls")


def train_method(
    key: str,
    corpus: RetrievalCorpus,
    cfg: TrainConfig,
    progress: StageProgress | None = None,
    base_model: Path | None = None,
    model_config: MuralConfig | None = None,
) -> tuple[Mural, TrainConfig, str]:
    """Method ``key`` of :data:`TRAINED` from ``base_model`` (a local BERT folder; None: the shipped
    MiniLM), initialised under ``cfg.seed``: pre-trained on the corpus's items when it learns the
    aspects and ``cfg.pretrain_epochs`` > 0, then fine-tuned on its train queries. Returns the model
    (eval mode), the training settings it ran with, and a one-line note (steps, last losses, time).
    ``model_config`` replaces the method's :class:`.mural.MuralConfig`."""
    from consumers.retrieval.mural import load_mural
    from consumers.retrieval.mural_train import finetune, pretrain

    if key not in TRAINED:
        raise InputError(f"unknown trained method {key!r}; choose from {', '.join(TRAINED)}")
    method = TRAINED[key]
    started = time.perf_counter()
    model = load_mural(corpus.items, model_config or method.model, base_model, seed=cfg.seed)
    cfg = replace(
        cfg,
        pretrain_epochs=cfg.pretrain_epochs if method.aspects else 0,
        finetune_aspect=method.aspects and cfg.finetune_aspect,
    )
    pre = pretrain(model, corpus, cfg, progress, stage=f"{key} pretrain") if cfg.pretrain_epochs else {}
    fine = finetune(model, corpus, cfg, progress, stage=f"{key} finetune")
    model.eval()
    pre_loss = pre.get("loss", [])
    aspects = f"aspects {', '.join(model.vocab.names)}" if method.aspects else "no aspects"
    note = (
        f"{aspects}; items read by their {cfg.item_field}; epochs {cfg.pretrain_epochs}+"
        f"{cfg.finetune_epochs} ({len(pre_loss)}+{len(fine['loss'])} steps, last losses {_last(pre_loss)} / "
        f"{_last(fine['loss'])}); {time.perf_counter() - started:.0f} s"
    )
    if model.fusion_scale is not None:
        note += f"; learned fusion scale γ {float(model.fusion_scale.detach()):.4f}"
    return model, cfg, note


def _last(history: list[float]) -> str:
    return f"{history[-1]:.3f}" if history else "-"
