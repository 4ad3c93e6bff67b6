"""LightPAIR's training targets and losses, one per task (distilled from the teacher's answers).

The losses are binary cross-entropies against the teacher's soft labels (vote shares / beliefs):

- relation filter: BCE over the relations offered for the head's label (others masked);
- expansion: BCE over a candidate set = the batch's positive tails ∪ ``negatives`` tails of the
  same label drawn at random (found tails and the head itself masked), plus the listwise loss;
  ``negatives=-1`` uses the whole closed tail set, so every near miss is a negative. With
  ``pool`` (v2) the prompts of one (head, relation) are merged first (:func:`pool_expansions`):
  the target of a tail is its best vote share over the rounds, and 0 where the teacher's own
  judgement rejected it (a hard negative from the transcript);
- judgement: BCE on the mean belief (``balance_judge``: both labels weigh the same in total).

The paper: Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing
with Progressive Prompting Augmentation", arXiv 2312.05276 (LightPAIR).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

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
