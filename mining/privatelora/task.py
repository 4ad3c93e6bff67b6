"""The user's private feedback: PAIR's judgement task — is (head, relation, tail) true?

Built from the world's ground truth (:class:`mining.teacher.knowledge.TeacherKnowledge`):
every fact (h, r, t) is a positive; for each (h, r) with n true tails, n negatives are drawn
(seeded) from the first 2n + 3 entries of ``kb.guess_pool(h, r)`` — near misses such as sibling
categories or same-group intents, never a true tail. Each example is the sentence
"<head> <relation meaning> <tail>" with label 1 (true) or 0. The split is by head entity: a
test head never appears as a head in training (its tails may, as other heads' tails).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MEANINGS = {
    "NEEDS": "needs",
    "CO_OCCURS_WITH": "often happens together with",
    "PRECEDES": "usually comes before",
    "SERVES": "is bought for",
    "SUBCATEGORY_OF": "is a kind of",
}


@dataclass(frozen=True)
class Example:
    head: str
    relation: str
    tail: str
    label: int

    def text(self) -> str:
        return f"{self.head} {MEANINGS[self.relation]} {self.tail}"


@dataclass(frozen=True)
class Split:
    train: list[Example]
    test: list[Example]


def judgement_examples(seed: int = 0) -> list[Example]:
    """Positives from the facts, as many near-miss negatives per (head, relation), in a fixed order."""
    from mining.teacher.knowledge import TeacherKnowledge

    kb = TeacherKnowledge.load()
    rng = random.Random(seed)
    out: list[Example] = []
    for head_id in sorted(kb.facts):
        head = kb.name_of(head_id)
        head_type = "Intent" if head_id in kb.ontology.intents else "Category"
        for rel in sorted(kb.facts[head_id]):
            facts = kb.facts[head_id][rel]
            out += [Example(head, rel, f.tail, 1) for f in facts]
            pool = kb.guess_pool(head, head_type, rel)[: 2 * len(facts) + 3]
            out += [Example(head, rel, t, 0) for t in rng.sample(pool, min(len(facts), len(pool)))]
    return out


def split_by_head(examples: list[Example], test_share: float = 0.2, seed: int = 0) -> Split:
    """Hold out a seeded ``test_share`` of the head entities with all their examples."""
    heads = sorted({e.head for e in examples})
    random.Random(seed).shuffle(heads)
    test_heads = set(heads[: round(test_share * len(heads))])
    return Split(
        train=[e for e in examples if e.head not in test_heads],
        test=[e for e in examples if e.head in test_heads],
    )
