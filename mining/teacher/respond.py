"""The teacher's answers to PAIR's four prompts, truth plus noise.

Paper (PAIR): Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276.

:func:`answer` reads the prompt's facts block (``mining.prompts.read_facts``) and dispatches on
``Task``; the noise it applies is documented in ``noise.py``. Per task, with zero noise:

- ``relation_filter``: exactly the mined relations that have true tails for the head, each with
  a short reason naming its strongest tails. Only relations of ``SCHEMA.mined_relations()`` whose
  endpoints allow the head's label can ever appear: the set comes from the schema, never from the
  prompt text, so an entity name cannot add a relation.
- ``free_relations``: the head's true facts, strongest first, up to the ``k`` the prompt asks for,
  each with a free-form relation phrase (``PHRASES``: "needs", "requires", "goes with", "is
  followed by", ...) that the mining side has to map back to the schema.
- ``entity_expansion`` (progressive prompting): round 1 gives at most ``first_round_share`` of
  the true tails, strongest first (at least one, so with three or more it is a strict subset);
  round r > 1 gives every true tail not listed as found in the prompt. Capped at the ``k`` asked.
- ``judge_triple``: valid iff the triple is in the truth. The confidence is in the verdict:
  0.55 + 0.4·weight for a true triple, 0.7 for a false near miss, 0.9 for another false tail,
  0.55 when the head is unknown.
- ``doc_relation_filter``, ``doc_entity_expansion``, ``doc_judge_triple``: the same tasks grounded
  in a passage of a world document, answered from what the passage states (``passages.py``).

An entity the teacher does not know gets at most ``unknown_guesses`` guesses (near misses of
look-alike entities, drawn per sample so they disagree across samples, as low-confidence model
output does). A prompt without a recognisable facts block gets a polite prose reply, not JSON.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from graph.schema import SCHEMA
from mining.prompts import Message, read_facts
from mining.teacher import passages
from mining.teacher.knowledge import TAIL_TYPES, Fact, TeacherKnowledge, key
from mining.teacher.noise import (
    Draws,
    NoiseConfig,
    hallucination_count,
    insert_at_random,
    malform,
    pick,
    prompt_hash,
)
from mining.teacher.variants import surface_variant

PHRASES: dict[str, tuple[str, ...]] = {
    "NEEDS": ("needs", "requires", "calls for", "involves buying"),
    "CO_OCCURS_WITH": ("goes with", "often comes with", "happens together with"),
    "PRECEDES": ("is followed by", "comes before", "leads to"),
    "SERVES": ("is used for", "serves", "helps with"),
    "SUBCATEGORY_OF": ("is a kind of", "is a type of", "falls under"),
}
PROSE = (
    "Hello! I am a marketing knowledge assistant. I can tell you which relations apply to an "
    "entity, which categories people with an intent need, or whether a fact holds. Which entity "
    "would you like to know about?"
)
MAX_K = 50
T = TypeVar("T")
FOUND_LINE = re.compile(r"^Found in earlier rounds \(do not repeat; add others\): (.*)$", re.M)


@dataclass(frozen=True)
class Ask:
    """One sample's inputs: the facts block, the user text and the draws."""

    facts: dict[str, str]
    text: str
    kb: TeacherKnowledge
    noise: NoiseConfig
    draws: Draws

    @property
    def head(self) -> tuple[str, str]:
        return self.facts.get("Entity", ""), self.facts.get("Entity type", "")

    def k(self, default: int = 10) -> int:
        asked = re.findall(r"up to (\d+)", self.text)
        return min(int(asked[-1]), MAX_K) if asked else default


def answer(
    messages: Sequence[Message],
    *,
    n: int,
    temperature: float,
    knowledge: TeacherKnowledge,
    noise: NoiseConfig,
    request_seed: int | None = None,
) -> list[str]:
    """``n`` sampled answers to a PAIR prompt (identical at temperature 0)."""
    facts = read_facts(messages)
    task = TASKS.get(facts.get("Task", ""))
    if task is None:
        return [PROSE] * n
    text = "\n".join(m["content"] for m in messages if m["role"] == "user")
    phash = prompt_hash(messages)
    out = []
    for index in range(n):
        draws = Draws.of(noise, phash, index, temperature, request_seed)
        broken = draws.sample.random() < noise.format_error
        reply = json.dumps(task(Ask(facts, text, knowledge, noise, draws)), ensure_ascii=False)
        out.append(malform(reply, draws.sample) if broken else reply)
    return out


def keep(items: Sequence[T], ask: Ask) -> list[T]:
    """``items`` after omission (shared) and, at temperature > 0, the per-sample re-draw."""
    shared = [ask.draws.shared.random() >= ask.noise.omission for _ in items]
    flips = [ask.draws.sample.random() < ask.draws.extra for _ in items]
    return [f for f, kept, flip in zip(items, shared, flips, strict=True) if kept != flip]


def hallucinate(pool: Sequence[str], n_true: int, exclude: set[str], ask: Ask) -> list[str]:
    """Shared near-miss tails (each kept per sample with 1 − extra) plus per-sample extras.

    They are drawn from the most plausible part of ``pool`` (its first max(8, 2·n_true) names).
    """
    d, pool = ask.draws, pool[: max(8, 2 * n_true)]
    shared = pick(pool, hallucination_count(n_true, ask.noise.hallucination, d.shared), exclude, d.shared)
    shared = [h for h in shared if d.sample.random() >= d.extra]
    extra = pick(pool, hallucination_count(n_true, d.extra, d.sample) if d.extra else 0, exclude, d.sample)
    return shared + [h for h in extra if h not in shared]


def guesses(pool: Sequence[str], ask: Ask) -> list[str]:
    """What the teacher says about an entity it does not know: a few near misses, per sample."""
    if ask.noise.unknown_guesses == 0 or not pool:
        return []
    count = ask.draws.sample.randint(1, ask.noise.unknown_guesses)
    return pick(pool[:20], count, set(), ask.draws.sample)


def menu(head_type: str) -> list[str]:
    """Mined relations the schema allows for this head label, in schema order."""
    return [r.name for r in SCHEMA.mined_relations() if any(h == head_type for h, _ in r.endpoints)]


def relation_filter(ask: Ask) -> dict[str, Any]:
    name, etype = ask.head
    options, truth = menu(etype), ask.kb.relations(name, etype)
    if ask.kb.find(name, etype) is None:
        common = ask.kb.common_relation(etype)
        chosen = [common] if common in options and ask.noise.unknown_guesses else []
        return {"relations": [{"relation": r, "reason": "a guess; I do not know it well"} for r in chosen]}
    d, rate = ask.draws, ask.noise.relation_confusion
    chosen = [r for r in options if (r in truth) != (d.shared.random() < rate)]
    chosen = [r for r in options if (r in chosen) != (d.sample.random() < d.extra)]
    return {"relations": [{"relation": r, "reason": reason(ask, r, truth.get(r, []))} for r in chosen]}


def reason(ask: Ask, relation: str, facts: Sequence[Fact]) -> str:
    ent = ask.kb.find(*ask.head)
    name = ent.name if ent else "it"
    phrase = PHRASES.get(relation, ("relates to",))[0]
    if not facts:
        return f"{name} probably {phrase} some related entities"
    return f"{name} {phrase} {', '.join(f.tail for f in facts[:3])}"


def free_relations(ask: Ask) -> dict[str, Any]:
    name, etype = ask.head
    truth = ask.kb.relations(name, etype)
    facts = sorted(
        ((rel, f) for rel, fs in truth.items() for f in fs), key=lambda rf: (-rf[1].weight, rf[1].tail)
    )
    d = ask.draws
    if ask.kb.find(name, etype) is None:
        rel = ask.kb.common_relation(etype)
        tails = guesses(ask.kb.guess_pool(name, etype, rel), ask) if rel else []
        return {"triples": [{"relation": phrase(rel or "", d.sample), "tail": t} for t in tails]}
    triples = [(rel, f.tail) for rel, f in keep(facts, ask)]
    for rel in truth:
        pool = ask.kb.guess_pool(name, etype, rel)
        wrong = hallucinate(pool, len(truth[rel]), {key(t) for _, t in triples}, ask)
        triples += [(rel, t) for t in wrong]
    others = list(PHRASES)
    out = []
    for rel, tail in triples:
        confused = d.shared.random() < ask.noise.relation_confusion
        said = d.shared.choice([r for r in others if r != rel]) if confused else rel
        out.append({"relation": phrase(said, d.shared), "tail": vary(tail, ask)})
    return {"triples": out[: ask.k()]}


def phrase(relation: str, gen: random.Random) -> str:
    return gen.choice(PHRASES.get(relation, ("relates to",)))


def entity_expansion(ask: Ask) -> dict[str, Any]:
    name, etype = ask.head
    relation, tail_type = ask.facts.get("Relation", ""), ask.facts.get("Tail type", "")
    if relation not in TAIL_TYPES or tail_type not in ("", TAIL_TYPES[relation]):
        return {"tails": []}
    typed = TAIL_TYPES[relation]
    if ask.kb.find(name, etype) is None:
        unsure = guesses(ask.kb.guess_pool(name, etype, relation), ask)
        return {"tails": [{"name": t, "type": typed} for t in unsure]}
    true = ask.kb.tails(name, etype, relation)
    if round_of(ask) == 1:
        true = true[: max(1, int(ask.noise.first_round_share * len(true) + 0.5))]
    found = {key(x) for x in found_in(ask.text)}
    eligible = [f for f in true if key(f.tail) not in found]
    names = [f.tail for f in keep(eligible, ask)]
    exclude = found | {key(x) for x in names}
    wrong = hallucinate(ask.kb.guess_pool(name, etype, relation), len(eligible), exclude, ask)
    names = insert_at_random(names, wrong, ask.draws.shared)
    return {"tails": [{"name": vary(t, ask), "type": typed} for t in names[: ask.k()]]}


def vary(name: str, ask: Ask) -> str:
    """``name``, or with probability ``surface_variation`` a surface variant of it (per sample)."""
    gen = ask.draws.sample
    return surface_variant(name, gen) if gen.random() < ask.noise.surface_variation else name


def round_of(ask: Ask) -> int:
    value = ask.facts.get("Round", "1")
    return int(value) if value.isdigit() else 1


def found_in(text: str) -> list[str]:
    """Tails the prompt lists as found in earlier rounds."""
    line = FOUND_LINE.search(text)
    return re.findall(r'"([^"]*)"', line.group(1)) if line else []


def judge_triple(ask: Ask) -> dict[str, Any]:
    name, etype = ask.head
    relation, tail = ask.facts.get("Relation", ""), ask.facts.get("Candidate tail", "")
    weight = ask.kb.weight(name, etype, relation, tail)
    if weight is not None:
        valid, conf = True, 0.55 + 0.4 * weight
    elif ask.kb.find(name, etype) is None:
        valid, conf = False, 0.55
    else:
        near = {key(x) for x in ask.kb.guess_pool(name, etype, relation)[:30]}
        valid, conf = False, 0.7 if key(tail) in near else 0.9
    gen, rate = ask.draws.sample, ask.noise.judge_noise
    if gen.random() < rate:
        valid, conf = not valid, 0.5 + (conf - 0.5) / 2
    conf += gen.uniform(-0.2, 0.2) * rate
    return {"valid": valid, "confidence": round(min(1.0, max(0.0, conf)), 3)}


TASKS: dict[str, Callable[[Ask], dict[str, Any]]] = {
    "relation_filter": relation_filter,
    "free_relations": free_relations,
    "entity_expansion": entity_expansion,
    "judge_triple": judge_triple,
    "doc_relation_filter": passages.relation_filter,
    "doc_entity_expansion": passages.entity_expansion,
    "doc_judge_triple": passages.judge_triple,
}
