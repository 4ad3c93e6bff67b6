"""Distil LightPAIR from a corpus: joint training of the three tasks, calibration, metrics.

Each step takes one batch of one task, the tasks interleaved round-robin; the losses are binary
cross-entropies against the teacher's soft labels (vote shares / beliefs):

- relation filter: BCE over the relations offered for the head's label (others masked);
- expansion: BCE over a candidate set = the batch's positive tails ∪ ``negatives`` tails of the
  same label drawn at random (found tails and the head itself masked), plus the listwise loss;
  ``negatives=-1`` uses the whole closed tail set, so every near miss is a negative. With
  ``pool`` (v2) the prompts of one (head, relation) are merged first (:func:`pool_expansions`):
  the target of a tail is its best vote share over the rounds, and 0 where the teacher's own
  judgement rejected it (a hard negative from the transcript);
- judgement: BCE on the mean belief (``balance_judge``: both labels weigh the same in total).

With the encoder wholly frozen (``train_layers=0``, v2) every text is encoded once
(``LightPAIR.frozen_memo``) and only the heads train, so many epochs cost seconds.

What trains is whatever ``requires_grad``: :func:`freeze_encoder` unfreezes the top
``train_layers`` encoder layers (the distil default); ``mining.tuning`` swaps in adapters instead.
After training, thresholds τ are chosen on a validation split of heads (best F1 against the
teacher's majority answers); for expansion a threshold τ_r and a cap K_r per relation, chosen
jointly for micro-F1 over the relations (K_r = 0 switches a relation off).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mining.lightpair.corpus import (
    Corpus,
    ExpansionExample,
    JudgeExample,
    RelationExample,
    judge_text,
    norm,
)
from mining.lightpair.model import LightPAIR, evidence_matrix

Batch = tuple[str, list[Any]]
GRID = [i / 100 for i in range(5, 96, 5)]
CAPS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20]


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
    return _part(corpus, val, False), _part(corpus, val, True)


def _part(corpus: Corpus, heads: set[str], inside: bool) -> Corpus:
    """Every task's examples whose head is in ``heads`` (``inside``) or not."""
    return Corpus(
        [r for r in corpus.relations if (r.head in heads) == inside],
        [r for r in corpus.expansions if (r.head in heads) == inside],
        [r for r in corpus.judgements if (r.head in heads) == inside],
        corpus.tails,
    )


def pool_expansions(corpus: Corpus) -> list[ExpansionExample]:
    """One example per (head, relation): each tail's best vote share over the pair's prompts
    (rounds), set to 0 where the teacher judged the triple false (mean belief < 0.5); no found
    tails, since the pooled target is the teacher's whole answer."""
    beliefs = {j.text: j.target for j in corpus.judgements}
    merged: dict[tuple[str, str], ExpansionExample] = {}
    for e in corpus.expansions:
        key = (e.head, e.relation)
        old = merged.get(key)
        targets = dict(old.targets) if old else {}
        for tail, share in e.targets.items():
            belief = beliefs.get(judge_text(e.head, e.head_type, e.relation, tail), 1.0)
            targets[tail] = max(targets.get(tail, 0.0), share if belief >= 0.5 else 0.0)
        evidence = old.evidence if old and old.evidence else e.evidence
        merged[key] = ExpansionExample(
            e.head, e.head_type, e.relation, e.tail_type, e.query, (), targets, evidence
        )
    return [merged[k] for k in sorted(merged)]


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


def relation_loss(model: LightPAIR, rows: Sequence[RelationExample]) -> torch.Tensor:
    logits = model.relation_logits(model.embed([r.text for r in rows]))
    target, mask = torch.zeros_like(logits), torch.zeros_like(logits)
    for i, r in enumerate(rows):
        for rel, share in r.targets.items():
            j = model.rel_index[rel]
            target[i, j], mask[i, j] = share, 1.0
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


def expansion_loss(
    model: LightPAIR,
    rows: Sequence[ExpansionExample],
    tails: Sequence[str],
    negatives: int,
    gen: random.Random,
) -> torch.Tensor:
    positives = sorted({t for r in rows for t in r.targets})
    pool = [t for t in tails if t not in set(positives)]
    names = positives + (pool if negatives < 0 else gen.sample(pool, min(negatives, len(pool))))
    keys = [norm(n) for n in names]
    logits = model.expansion_logits(
        model.embed([r.query for r in rows]),
        model.embed(names),
        [r.relation for r in rows],
        evidence_matrix([r.evidence for r in rows], keys, model.config.evidence_slots),
    )
    target, mask = torch.zeros_like(logits), torch.ones_like(logits)
    for i, r in enumerate(rows):
        skip = {norm(f) for f in r.found} | {norm(r.head)}
        for j, name in enumerate(names):
            target[i, j] = r.targets.get(name, 0.0)
            mask[i, j] = 0.0 if keys[j] in skip else 1.0
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = (bce * mask).sum() / mask.sum().clamp(min=1.0)
    return bce + listwise_loss(logits, target, mask)


def listwise_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of π(t | h, r) = softmax over the unmasked candidates against the targets
    normalised to a distribution (rows without a positive contribute 0)."""
    logp = torch.log_softmax(logits.masked_fill(mask == 0, -1e4), dim=-1)
    mass = (target * mask).sum(-1, keepdim=True)
    has = mass.squeeze(-1) > 0
    if not bool(has.any()):
        return logits.sum() * 0.0
    dist = (target * mask) / mass.clamp(min=1e-9)
    return -(dist * logp).sum(-1)[has].mean()


def judge_loss(model: LightPAIR, rows: Sequence[JudgeExample], positive_weight: float = 1.0) -> torch.Tensor:
    """BCE on the mean belief; rows the teacher judged true weigh ``positive_weight``."""
    logits = model.judge_logits(model.embed([r.text for r in rows]))
    target = torch.tensor([r.target for r in rows], dtype=logits.dtype)
    weight = torch.where(target >= 0.5, positive_weight, 1.0)
    return nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)


def judge_balance(rows: Sequence[JudgeExample]) -> float:
    """The positive weight that makes both labels weigh the same: #false / #true."""
    true = sum(r.target >= 0.5 for r in rows)
    return (len(rows) - true) / true if 0 < true < len(rows) else 1.0


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


@torch.no_grad()
def tail_matrix(model: LightPAIR, names: Sequence[str], batch: int = 256) -> torch.Tensor:
    """e(t) for every tail name, (T, d)."""
    model.eval()
    parts = [model.embed(names[i : i + batch]) for i in range(0, len(names), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, int(model.encoder.config.hidden_size))


def _f1(tp: int, predicted: int, true: int) -> float:
    return 2 * tp / (predicted + true) if predicted + true else 0.0


@torch.no_grad()
def relation_scores(model: LightPAIR, rows: Sequence[RelationExample]) -> list[dict[str, float]]:
    if not rows:
        return []
    probs = torch.sigmoid(model.relation_logits(model.embed([r.text for r in rows])))
    return [{rel: float(probs[i, model.rel_index[rel]]) for rel in r.targets} for i, r in enumerate(rows)]


@torch.no_grad()
def expansion_scores(
    model: LightPAIR,
    rows: Sequence[ExpansionExample],
    tails: dict[str, torch.Tensor],
    names: dict[str, list[str]],
) -> list[list[tuple[str, float]]]:
    """Per row: every allowed tail (found tails and the head excluded) with p(t | h, r), best first."""
    out = []
    keys = {label: [norm(n) for n in ns] for label, ns in names.items()}
    for r in rows:
        phi = evidence_matrix([r.evidence], keys[r.tail_type], model.config.evidence_slots)
        logits = model.expansion_logits(model.embed([r.query]), tails[r.tail_type], [r.relation], phi)[0]
        skip = {norm(f) for f in r.found} | {norm(r.head)}
        ranked = sorted(
            zip(names[r.tail_type], torch.sigmoid(logits).tolist(), strict=True), key=lambda x: -x[1]
        )
        out.append([(n, p) for n, p in ranked if norm(n) not in skip])
    return out


def best_threshold(
    pairs: Sequence[tuple[list[tuple[str, float]], set[str]]], top_k: int = 10
) -> tuple[float, float]:
    """(τ, F1) maximising micro-F1 of "top-k with p ≥ τ" against the true sets."""
    best = (0.5, -1.0)
    for tau in GRID:
        tp = pred = true = 0
        for ranked, gold in pairs:
            chosen = {n for n, p in ranked[:top_k] if p >= tau}
            tp, pred, true = tp + len(chosen & gold), pred + len(chosen), true + len(gold)
        f1 = _f1(tp, pred, true)
        best = max(best, (tau, f1), key=lambda x: x[1])
    return best


def calibrate_and_score(
    model: LightPAIR, val: Corpus, tails: dict[str, torch.Tensor], pool: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """(thresholds, metrics) on ``val``: τ per expansion relation and for relation filtering,
    and each task's F1 / accuracy against the teacher's majority answer (share ≥ 0.5).

    With ``pool`` the expansion rows are pooled per (head, relation) and a cap K_r
    (``expansion_cap:REL``) is chosen with τ_r, jointly per head label (:func:`joint_caps`)."""
    return calibrate_from(Scored.of(model, val, tails, pool), pool)


@dataclass
class Scored:
    """A model's scores on held-out heads: what calibration reads (one fold's, or all folds')."""

    relations: list[RelationExample]
    relation_scores: list[dict[str, float]]
    expansions: list[ExpansionExample]
    ranked: list[list[tuple[str, float]]]
    judged: list[bool]  # judgement right (p ≥ 0.5 agrees with the teacher's majority)

    @classmethod
    def of(cls, model: LightPAIR, val: Corpus, tails: dict[str, torch.Tensor], pool: bool) -> Scored:
        """``model``'s scores on ``val`` (expansions pooled per (head, relation) with ``pool``)."""
        rows = pool_expansions(val) if pool else val.expansions
        return cls(
            list(val.relations),
            relation_scores(model, val.relations),
            rows,
            expansion_scores(model, rows, tails, val.tails),
            judge_hits(model, val.judgements),
        )

    def extend(self, other: Scored) -> None:
        self.relations += other.relations
        self.relation_scores += other.relation_scores
        self.expansions += other.expansions
        self.ranked += other.ranked
        self.judged += other.judged


def calibrate_from(scored: Scored, pool: bool) -> tuple[dict[str, float], dict[str, float]]:
    """(thresholds, metrics) from held-out scores (see :func:`calibrate_and_score`)."""
    thresholds: dict[str, float] = {}
    metrics: dict[str, float] = {}
    rel_pairs = [
        ([(r, p) for r, p in scores.items()], {r for r, s in row.targets.items() if s >= 0.5})
        for row, scores in zip(scored.relations, scored.relation_scores, strict=True)
    ]
    thresholds["relation_filter"], metrics["relation_filter_f1"] = best_threshold(rel_pairs, top_k=99)
    metrics["judge_accuracy"] = sum(scored.judged) / len(scored.judged) if scored.judged else 0.0
    if pool:
        thresholds |= caps_from(scored.expansions, scored.ranked)
        metrics["expansion_f1"] = thresholds.pop("f1")
        return thresholds, metrics
    tp = pred = true = 0
    for relation in sorted({e.relation for e in scored.expansions}):
        pairs = [
            (rk, {t for t, s in e.targets.items() if s >= 0.5})
            for e, rk in zip(scored.expansions, scored.ranked, strict=True)
            if e.relation == relation
        ]
        tau, _ = best_threshold(pairs)
        thresholds[f"expansion:{relation}"] = tau
        for rk, gold in pairs:
            chosen = {n for n, p in rk[:10] if p >= tau}
            tp, pred, true = tp + len(chosen & gold), pred + len(chosen), true + len(gold)
    metrics["expansion_f1"] = _f1(tp, pred, true)
    return thresholds, metrics


def cross_fit(
    model: LightPAIR,
    corpus: Corpus,
    config: TrainConfig,
    folds: int,
    log: Callable[[str], None] | None = None,
    memo: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Cross-fitted calibration: ``folds`` models, each trained from ``model``'s current state
    without one fold of the heads and scored on it; τ, K and the metrics come from the scores of
    every head (out of fold), so they rest on all heads instead of one small validation split.
    ``model`` is left in its starting state (the caller then trains it on every head). With a
    frozen encoder every text (and tail name) is encoded once for all folds, into ``memo``."""
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    heads = sorted(corpus.heads())
    random.Random(config.seed).shuffle(heads)
    fold_of = {h: i % folds for i, h in enumerate(heads)}
    scored = Scored([], [], [], [], [])
    memo = memo if memo is not None else {}
    for k in range(folds):
        model.load_state_dict(start)
        inside = {h for h, f in fold_of.items() if f == k}
        train, val = _part(corpus, inside, False), _part(corpus, inside, True)
        fit(model, train, config, log, memo=memo)
        if log:
            log(f"calibration fold {k + 1}/{folds}: {len(val.heads())} held-out heads")
        with memoised(model, memo):
            tails = {label: tail_matrix(model, names) for label, names in corpus.tails.items()}
            scored.extend(Scored.of(model, val, tails, config.pool))
    model.load_state_dict(start)
    return calibrate_from(scored, config.pool)


Counts = dict[tuple[float, int], tuple[int, int, int]]


def _grid_counts(pairs: Sequence[tuple[list[tuple[str, float]], set[str]]]) -> Counts:
    """(τ, K) → (true positives, predicted, true) of "the top K with p ≥ τ" over ``pairs``."""
    out: Counts = {}
    for tau in GRID:
        for cap in CAPS:
            tp = pred = true = 0
            for ranked, gold in pairs:
                chosen = {n for n, p in ranked[:cap] if p >= tau}
                tp, pred, true = tp + len(chosen & gold), pred + len(chosen), true + len(gold)
            out[tau, cap] = (tp, pred, true)
    return out


def _micro(counts: Sequence[tuple[int, int, int]]) -> float:
    return _f1(sum(c[0] for c in counts), sum(c[1] for c in counts), sum(c[2] for c in counts))


def _pick(counts: dict[str, Counts], rounds: int = 2) -> dict[str, tuple[float, int]]:
    """Coordinate ascent on micro-F1 over the relations: each relation's (τ, K) in turn, from
    each relation's own best; ties go to the smaller cap."""
    chosen = {r: max(c, key=lambda k: (_f1(*c[k]), -k[1])) for r, c in counts.items()}
    for _ in range(rounds):
        for rel, grid in counts.items():
            others = [counts[r][chosen[r]] for r in counts if r != rel]
            chosen[rel] = max(grid, key=lambda k: (_micro([*others, grid[k]]), -k[1]))
    return chosen


def joint_caps(
    model: LightPAIR,
    rows: Sequence[ExpansionExample],
    tails: dict[str, torch.Tensor],
    names: dict[str, list[str]],
) -> dict[str, float]:
    """τ_r and K_r (``expansion:REL``, ``expansion_cap:REL``) for pooled validation rows, chosen
    jointly per head label for micro-F1 against the teacher's majority tails; ``f1``: the micro-F1
    over every relation at the chosen values."""
    return caps_from(rows, expansion_scores(model, rows, tails, names))


def caps_from(
    rows: Sequence[ExpansionExample], ranked: Sequence[list[tuple[str, float]]]
) -> dict[str, float]:
    """:func:`joint_caps` from rows already scored (``ranked``: each row's tails, best first)."""
    out: dict[str, float] = {}
    tp = pred = true = 0
    for label in sorted({e.head_type for e in rows}):
        counts = {
            rel: _grid_counts(
                [
                    (rk[: CAPS[-1]], {t for t, s in e.targets.items() if s >= 0.5})
                    for e, rk in zip(rows, ranked, strict=True)
                    if e.relation == rel and e.head_type == label
                ]
            )
            for rel in sorted({e.relation for e in rows if e.head_type == label})
        }
        chosen = _pick(counts)
        for rel, (tau, cap) in chosen.items():
            out[f"expansion:{rel}"], out[f"expansion_cap:{rel}"] = tau, float(cap)
            a, b, c = counts[rel][tau, cap]
            tp, pred, true = tp + a, pred + b, true + c
    out["f1"] = _f1(tp, pred, true)
    return out


@torch.no_grad()
def judge_hits(model: LightPAIR, rows: Sequence[JudgeExample]) -> list[bool]:
    """Per judgement: does p ≥ 0.5 agree with the teacher's majority?"""
    if not rows:
        return []
    probs = torch.sigmoid(model.judge_logits(model.embed([r.text for r in rows])))
    return [(float(p) >= 0.5) == (r.target >= 0.5) for p, r in zip(probs, rows, strict=True)]


def judge_accuracy(model: LightPAIR, rows: Sequence[JudgeExample]) -> float:
    hits = judge_hits(model, rows)
    return sum(hits) / len(hits) if hits else 0.0
