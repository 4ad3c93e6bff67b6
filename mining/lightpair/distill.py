"""``mokg lightpair distill``: transcript → corpus → trained, calibrated, saved LightPAIR."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from graph.errors import InputError
from graph.schema import SCHEMA
from mining.lightpair import checkpoint
from mining.lightpair.calibration import calibrate_and_score, cross_fit, tail_matrix
from mining.lightpair.corpus import Corpus, build_corpus, read_transcript, surface_map
from mining.lightpair.model import LightPAIR, ModelConfig, build_model, parameter_count
from mining.lightpair.training import TrainConfig, fit, freeze_encoder, memoised, split
from mining.pipeline.builddir import BuildDir


def hold_out_intents(n: int, seed: int, intents: Sequence[str]) -> list[str]:
    """A seeded sample of ``n`` of the ``intents`` names (the store's; the evaluation seeds)."""
    names = sorted(intents)
    return sorted(random.Random(seed).sample(names, min(n, len(names)))) if n > 0 else []


def corpus_of(
    build: BuildDir, hold_out: list[str], tails: dict[str, list[str]]
) -> tuple[Corpus, dict[str, object]]:
    """The corpus of a build, without ``hold_out`` heads, over the closed ``tails`` (the store's
    :func:`store_tails`), and where it came from."""
    rows = read_transcript(build.transcript)
    corpus = build_corpus(rows, tails, surface_map(build), hold_out)
    if not corpus.relations and not corpus.expansions:
        raise InputError(f"{build.transcript} gave no usable examples; is it a PAIR build's transcript?")
    source = {
        "workdir": str(build.path),
        "run_id": build.run_id(),
        "transcript_lines": len(rows),
        "dropped": dict(corpus.stats),
    }
    return corpus, source


def tails_of(model: LightPAIR, corpus: Corpus) -> dict[str, torch.Tensor]:
    return {label: tail_matrix(model, names) for label, names in corpus.tails.items()}


def train_and_save(
    model: LightPAIR,
    corpus: Corpus,
    config: TrainConfig,
    out: Path | None,
    source: dict[str, object],
    hold_out: list[str],
    log: Callable[[str], None] | None = None,
) -> checkpoint.CheckpointMeta:
    """Fit on the training heads, calibrate and score on the validation heads, save to ``out``
    (with ``config.folds`` ≥ 2: calibrate by cross-fitting, then fit on every head)."""
    began = time.perf_counter()
    memo: dict[str, torch.Tensor] = {}  # a frozen encoder's embeddings, shared by every fit
    if config.folds >= 2:
        thresholds, metrics = cross_fit(model, corpus, config, config.folds, log, memo=memo)
        train, val = corpus, None
    else:
        train, val = split(corpus, config.val_share, config.seed)
    losses = fit(model, train, config, log, memo=memo)
    with memoised(model, memo):
        tails = tails_of(model, corpus)
        if val is not None:
            thresholds, metrics = calibrate_and_score(model, val, tails, pool=config.pool)
    meta = checkpoint.CheckpointMeta(
        model=model.config,
        train=asdict(config),
        thresholds=thresholds,
        metrics=metrics,
        corpus_sha256=corpus.sha256(),
        source=source,
        held_out=hold_out,
        heads=sorted(corpus.heads()),
        tails=corpus.tails,
        extra={
            "train_s": round(time.perf_counter() - began, 1),
            "steps": len(losses),
            "last_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
            "parameters": parameter_count(model),
            "examples": {
                "relation_filter": len(train.relations),
                "entity_expansion": len(train.expansions),
                "judge_triple": len(train.judgements),
            },
        },
    )
    if out is not None:
        checkpoint.save(out, model, meta, tails, corpus.to_json())
    return meta


def distill(
    build: BuildDir,
    out: Path,
    config: TrainConfig,
    hold_out: list[str],
    tails: dict[str, list[str]],
    log: Callable[[str], None] | None = None,
    per_relation: bool = False,
) -> checkpoint.CheckpointMeta:
    """The whole of ``mokg lightpair distill`` (``per_relation``: one query projection per
    relation, the v2 model); ``tails``: the store's closed tail sets (:func:`store_tails`)."""
    torch.manual_seed(config.seed)
    corpus, source = corpus_of(build, hold_out, tails)
    relations = tuple(r.name for r in SCHEMA.mined_relations())
    evidence = any(e.evidence for e in corpus.expansions)  # prompts mined with behavioural evidence
    # one φ slot per kind a relation's evidence came in (items of a second kind carry their slot)
    slots = 1 + max((int(x[4]) for e in corpus.expansions for x in e.evidence if len(x) > 4), default=0)
    model = build_model(
        ModelConfig(relations, per_relation=per_relation, evidence=evidence, evidence_slots=slots)
    )
    freeze_encoder(model, config.train_layers)
    return train_and_save(model, corpus, config, out, source, hold_out, log)
