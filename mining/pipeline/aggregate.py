"""Stage 3 of PAIR, reliable aggregation.

Paper (PAIR): Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276.

The tail mentions of one prompt's ``n`` samples are resolved to entities first (``resolve.py``),
so surface variants of one entity pool their votes. For a candidate triple (h, r, t):

    vote(t)        = |{samples that name t}| / n                       (self-consistency)
    rel(h, r, t)   = cos(MiniLM(name(h) ⊕ meaning(r)), MiniLM(name(t)))  (semantic relatedness)
    score(h, r, t) = λ · vote + (1 − λ) · max(rel, 0)                    (``aggregation="sc_rel"``)

``sc`` uses score = vote (accepted at ≥ ``sc_accept``, a majority); ``none`` (one greedy
sample) keeps every tail with score = 1. A candidate is accepted when score ≥ ``accept``, at
most ``top_k`` per (head, relation) and round, best first. Both parts are kept on the written
edge (``vote``, ``relatedness``).

With ``judge`` on, each accepted triple is then put to PAIR's aggregation judgement prompt
(``judge_triple``) ``judge_samples`` times; its belief is the mean over the samples of
``confidence`` when judged valid and ``1 − confidence`` when not, and the triple stays accepted
if the belief is ≥ 0.5 (the written confidence is then (score + belief) / 2).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from graph.schema import SCHEMA
from mining.llm.base import LLMClient
from mining.llm.structured import aask_structured
from mining.pipeline.config import MiningConfig
from mining.pipeline.embed import Embedder
from mining.pipeline.expand import Mention
from mining.pipeline.free import relation_text
from mining.pipeline.resolve import Resolution, Resolver, concept_id
from mining.pipeline.types import Candidate, Entity, Pair
from mining.prompts import EntityContext, JudgementAnswer, build_judgement, build_passage_judgement


@dataclass
class AggregateStats:
    candidates: int = 0
    accepted: int = 0
    judged: int = 0
    judged_out: int = 0
    resolved: dict[str, int] | None = None
    dropped_unresolved: int = 0
    ungrounded: int = 0  # document mining: tails the passage does not contain (not accepted)

    def count(self, method: str) -> None:
        self.resolved = self.resolved or {}
        self.resolved[method] = self.resolved.get(method, 0) + 1


# (head label, relation) whose unresolved tails become new Concepts (the schema must allow
# head -> Concept for the relation; SERVES from a Concept ends in an Intent, so it is not here)
CONCEPT_RELATIONS = {("Intent", "NEEDS")}


def _tail_entity(pair: Pair, surface: str, res: Resolution, stats: AggregateStats) -> Entity | None:
    stats.count(res.method)
    if res.entity is not None:
        return res.entity
    if (pair.head.type, pair.relation) in CONCEPT_RELATIONS:
        return Entity(concept_id(surface), surface, "Concept", new=True)
    stats.dropped_unresolved += 1
    return None


def candidates_of(
    mentions: Sequence[Mention],
    samples: int,
    round_: int,
    resolver: Resolver,
    stats: AggregateStats,
) -> list[Candidate]:
    """Mentions → one candidate per (pair, prompt, tail entity), votes counted over distinct samples."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for m in mentions:
        by_label[m.pair.tail_type].append(m.surface)
    resolved: dict[tuple[str, str], Resolution] = {}
    for label, names in by_label.items():
        unique = sorted(set(names))
        resolved.update(zip([(label, n) for n in unique], resolver.resolve_many(unique, label), strict=True))
    groups: dict[tuple[Pair, str, str], Candidate] = {}
    seen: dict[tuple[Pair, str, str], set[int]] = defaultdict(set)
    for m in mentions:
        tail = _tail_entity(m.pair, m.surface, resolved[m.pair.tail_type, m.surface], stats)
        if tail is None or tail.ref == m.pair.head.ref:
            continue
        key = (m.pair, m.prompt_id, tail.id)
        cand = groups.setdefault(key, Candidate(m.pair.head, m.pair.relation, tail, round_, samples))
        cand.surfaces.add(m.surface)
        if not cand.prompt_ids:
            cand.prompt_ids.append(m.prompt_id)
        seen[key].add(m.sample)
    for key, cand in groups.items():
        cand.votes = len(seen[key])
    stats.candidates += len(groups)
    return list(groups.values())


def score(candidates: Sequence[Candidate], config: MiningConfig, embed: Embedder) -> None:
    """Fill ``relatedness``, ``score`` and ``accepted`` (top-k per head, relation and prompt)."""
    if not candidates:
        return
    heads = [f"{c.head.name}: {relation_text(c.relation)}" for c in candidates]
    rel = embed.cosine(heads, [c.tail.name for c in candidates])
    for cand, r in zip(candidates, rel, strict=True):
        cand.relatedness = float(r)
        if config.aggregation == "none":
            cand.score = 1.0
        elif config.aggregation == "sc":
            cand.score = cand.vote
        else:
            cand.score = config.lam * cand.vote + (1 - config.lam) * max(float(r), 0.0)
    groups: dict[tuple[str, str, str, str], list[Candidate]] = defaultdict(list)
    for cand in candidates:
        groups[(*cand.head.ref, cand.relation, cand.prompt_ids[0])].append(cand)
    for group in groups.values():
        group.sort(key=lambda c: (-c.score, c.tail.id))
        bar = config.sc_accept if config.aggregation == "sc" else config.accept
        for cand in group[: config.top_k]:
            cand.accepted = cand.score >= bar


async def judge(
    client: LLMClient,
    cand: Candidate,
    ctx: EntityContext,
    config: MiningConfig,
    stats: AggregateStats,
    passage: str | None = None,
) -> None:
    """Put one accepted triple to the judgement prompt; un-accept it if the belief is below 0.5
    (``passage``: does the text state it?)."""
    rel = SCHEMA.rel(cand.relation)
    if passage is None:
        task, messages = "judge_triple", build_judgement(ctx, rel, cand.tail.name, cand.tail.type)
    else:
        task = "doc_judge_triple"
        messages = build_passage_judgement(ctx, rel, cand.tail.name, cand.tail.type, passage)
    result = await aask_structured(
        client, task, messages, n=config.judge_samples, temperature=config.temperature
    )
    beliefs = []
    for answer in result.answers:
        assert isinstance(answer, JudgementAnswer)
        beliefs.append(answer.confidence if answer.valid else 1.0 - answer.confidence)
    stats.judged += 1
    if beliefs:
        cand.judge = sum(beliefs) / len(beliefs)
        cand.accepted = cand.judge >= 0.5
        stats.judged_out += not cand.accepted
