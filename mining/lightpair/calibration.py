"""LightPAIR's calibration and metrics on held-out heads.

After training, thresholds τ are chosen on held-out heads (best F1 against the teacher's majority
answers): for relation filtering one τ; for expansion a threshold τ_r and a cap K_r per relation,
chosen jointly for micro-F1 over the relations (K_r = 0 switches a relation off). The held-out
heads are a validation split (:func:`calibrate_and_score`) or every head, out of fold
(:func:`cross_fit`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mining.lightpair.corpus import Corpus, ExpansionExample, JudgeExample, RelationExample, norm
from mining.lightpair.losses import pool_expansions
from mining.lightpair.model import LightPAIR, evidence_matrix
from mining.lightpair.training import TrainConfig, fit, memoised, part

GRID = [i / 100 for i in range(5, 96, 5)]
CAPS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20]


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
        train, val = part(corpus, inside, False), part(corpus, inside, True)
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
