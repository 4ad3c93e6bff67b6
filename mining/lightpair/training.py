"""Distil LightPAIR from a corpus: joint training of the three tasks.

Each step takes one batch of one task, the tasks interleaved round-robin; the losses are in
:mod:`mining.lightpair.losses`. With the encoder wholly frozen (``train_layers=0``, v2) every text
is encoded once (``LightPAIR.frozen_memo``) and only the heads train, so many epochs cost seconds.

What trains is whatever ``requires_grad``: :func:`freeze_encoder` unfreezes the top
``train_layers`` encoder layers (the distil default); ``mining.tuning`` swaps in adapters instead.
Thresholds and caps are chosen afterwards, in :mod:`mining.lightpair.calibration`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from mining.lightpair.corpus import Corpus
from mining.lightpair.losses import expansion_loss, judge_balance, judge_loss, pool_expansions, relation_loss
from mining.lightpair.model import LightPAIR

Batch = tuple[str, list[Any]]


@dataclass(frozen=True)
class TrainConfig:
    """How LightPAIR is distilled.

    Args:
        epochs: passes over the corpus.
        batch_size: examples per step.
        lr: learning rate of encoder / adapter parameters.
        head_lr: learning rate of the task heads.
        evidence_lr: learning rate of the evidence weights v_r (a few weights that must grow to
            logit scale, so faster than the heads).
        negatives: random tails added to each expansion batch's candidate set (−1: all tails).
        train_layers: top encoder layers fine-tuned by ``freeze_encoder`` (−1: all, 0: none).
        pool: merge the expansion prompts of one (head, relation), see :func:`pool_expansions`.
        balance_judge: weigh the judgement labels so both classes count the same.
        val_share: share of heads kept out of training, for calibration and metrics.
        folds: with 2 or more, calibrate by cross-fitting instead (:func:`cross_fit`: one model
            per fold of the heads, τ and K_r from every head's out-of-fold scores), then train
            on every head; ``val_share`` is then unused.
        max_steps: stop after this many steps (None: all epochs).
        seed: seeds the split, the batch order, the negatives and torch.
    """

    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    evidence_lr: float = 0.05
    negatives: int = 64
    train_layers: int = 2
    val_share: float = 0.1
    folds: int = 0
    max_steps: int | None = None
    seed: int = 0
    pool: bool = False
    balance_judge: bool = False


V2 = TrainConfig(epochs=10, train_layers=0, negatives=-1, pool=True, balance_judge=True)
"""The v2 recipe (docs/lightpair.md): frozen encoder, whole tail set, pooled targets."""

V3 = TrainConfig(epochs=10, train_layers=0, negatives=-1, pool=True, balance_judge=True, folds=5)
"""v2 with 5-fold cross-fitted calibration, then training on every head."""


def split(corpus: Corpus, share: float, seed: int) -> tuple[Corpus, Corpus]:
    """(train, validation) by head: a head's examples of every task stay on one side."""
    heads = sorted(corpus.heads())
    val = set(random.Random(seed).sample(heads, round(len(heads) * share)))
    return part(corpus, val, False), part(corpus, val, True)


def part(corpus: Corpus, heads: set[str], inside: bool) -> Corpus:
    """Every task's examples whose head is in ``heads`` (``inside``) or not."""
    return Corpus(
        [r for r in corpus.relations if (r.head in heads) == inside],
        [r for r in corpus.expansions if (r.head in heads) == inside],
        [r for r in corpus.judgements if (r.head in heads) == inside],
        corpus.tails,
    )


def freeze_encoder(model: LightPAIR, train_layers: int) -> None:
    """Freeze the encoder except its top ``train_layers`` layers (−1: train all); heads train."""
    layers = model.encoder.encoder.layer
    keep = len(layers) if train_layers < 0 else train_layers
    for p in model.encoder.parameters():
        p.requires_grad = train_layers < 0
    for layer in list(layers)[len(layers) - keep :]:
        for p in layer.parameters():
            p.requires_grad = True


def _batches(corpus: Corpus, size: int, gen: random.Random, pool: bool = False) -> list[Batch]:
    out: list[Batch] = []
    for task, rows in (("relation", corpus.relations), ("judge", corpus.judgements)):
        order = gen.sample(list(rows), len(rows))
        out += [(task, order[i : i + size]) for i in range(0, len(order), size)]
    expansions = pool_expansions(corpus) if pool else corpus.expansions
    for label in sorted({e.tail_type for e in expansions}):
        rows_e = [e for e in expansions if e.tail_type == label]
        order_e = gen.sample(rows_e, len(rows_e))
        out += [("expansion", order_e[i : i + size]) for i in range(0, len(order_e), size)]
    gen.shuffle(out)
    return out


def task_loss(
    model: LightPAIR, batch: Batch, corpus: Corpus, config: TrainConfig, gen: random.Random
) -> torch.Tensor:
    task, rows = batch
    if task == "relation":
        return relation_loss(model, rows)
    if task == "judge":
        return judge_loss(model, rows, judge_balance(corpus.judgements) if config.balance_judge else 1.0)
    return expansion_loss(model, rows, corpus.tails[rows[0].tail_type], config.negatives, gen)


def optimizer_for(model: LightPAIR, config: TrainConfig) -> torch.optim.Optimizer:
    heads = {id(p) for m in (model.relation_head, model.query_proj, model.judge_head) for p in m.parameters()}
    heads |= {id(model.log_scale), id(model.expansion_bias)}
    if model.relation_proj is not None:
        heads.add(id(model.relation_proj))
    evidence = {id(model.evidence_weight)} if model.evidence_weight is not None else set()
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) in heads], "lr": config.head_lr},
        {"params": [p for p in trainable if id(p) in evidence], "lr": config.evidence_lr},
        {"params": [p for p in trainable if id(p) not in heads | evidence], "lr": config.lr},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.0)


def fit(
    model: LightPAIR,
    corpus: Corpus,
    config: TrainConfig,
    log: Callable[[str], None] | None = None,
    memo: dict[str, torch.Tensor] | None = None,
) -> list[float]:
    """Train the parameters that require grad; returns the loss of every step. With a frozen
    encoder, texts are encoded once into ``memo`` (pass one to share it between fits)."""
    torch.manual_seed(config.seed)
    gen = random.Random(config.seed)
    opt = optimizer_for(model, config)
    model.train()
    try:
        with memoised(model, memo if memo is not None else {}):
            return _steps(model, corpus, config, gen, opt, log)
    finally:
        model.eval()


@contextmanager
def memoised(model: LightPAIR, memo: dict[str, torch.Tensor]) -> Iterator[None]:
    """For the block, ``model.embed`` encodes each text once into ``memo`` when the encoder is
    frozen (its embeddings cannot change); with a trainable encoder nothing is memoised."""
    frozen = not any(p.requires_grad for p in model.encoder.parameters())
    model.frozen_memo = memo if frozen else None
    try:
        yield
    finally:
        model.frozen_memo = None


def _steps(
    model: LightPAIR,
    corpus: Corpus,
    config: TrainConfig,
    gen: random.Random,
    opt: torch.optim.Optimizer,
    log: Callable[[str], None] | None,
) -> list[float]:
    losses: list[float] = []
    for epoch in range(config.epochs):
        for step, batch in enumerate(_batches(corpus, config.batch_size, gen, config.pool)):
            loss = task_loss(model, batch, corpus, config, gen)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            losses.append(loss.item())
            if log and step % 25 == 0:
                log(f"epoch {epoch + 1} step {step}: {batch[0]} loss {loss.item():.4f}")
            if config.max_steps is not None and len(losses) >= config.max_steps:
                return losses
    return losses
