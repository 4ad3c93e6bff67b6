"""Stage 1 of PAIR, adaptive relation filtering.

Paper (PAIR): Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276.

Instead of letting the LLM invent relations, it is shown the closed set of mined relations the
schema allows for the head's label (with their descriptions) and chooses which apply. Over the
``n`` samples a relation is kept when its vote share reaches ``relation_vote``; a chosen name
outside the set, or one whose endpoints do not allow the head's label, is rejected and counted.
The ablation, free relation generation, lives in ``free.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from graph.schema import SCHEMA
from mining.llm.base import LLMClient
from mining.llm.structured import ParseCounts, aask_structured
from mining.pipeline.config import MiningConfig
from mining.pipeline.types import Entity, Pair
from mining.prompts import (
    EntityContext,
    RelationFilterAnswer,
    build_passage_relation_filter,
    build_relation_filter,
)

PREFERRED_TAILS = ("Category", "Intent", "Brand", "Item", "Concept")


def tail_type(relation: str, head_type: str) -> str | None:
    """The tail label asked for (head, relation): the first the schema allows, in PREFERRED_TAILS order."""
    tails = {t for h, t in SCHEMA.rel(relation).endpoints if h == head_type}
    return next((t for t in PREFERRED_TAILS if t in tails), None)


@dataclass
class FilterStats(ParseCounts):
    heads: int = 0
    offered: int = 0
    chosen: int = 0
    rejected_by_schema: int = 0


async def filter_relations(
    client: LLMClient,
    head: Entity,
    ctx: EntityContext,
    config: MiningConfig,
    stats: FilterStats,
    passage: str | None = None,
) -> list[Pair]:
    """The (head, relation) pairs worth expanding, by vote over ``config.n_samples`` samples
    (``passage``: the relations the text states, for document mining)."""
    mined = {r.name for r in SCHEMA.mined_relations()}
    if passage is None:
        task, messages = "relation_filter", build_relation_filter(ctx)
    else:
        task, messages = "doc_relation_filter", build_passage_relation_filter(ctx, passage)
    result = await aask_structured(
        client, task, messages, n=config.n_samples, temperature=config.sample_temperature
    )
    stats.heads += 1
    stats.add(result)
    stats.offered += sum(1 for r in SCHEMA.mined_relations() if tail_type(r.name, head.type))
    votes: Counter[str] = Counter()
    for answer in result.answers:
        assert isinstance(answer, RelationFilterAnswer)
        for name in {c.relation.strip().upper() for c in answer.relations}:
            if name in mined and tail_type(name, head.type):
                votes[name] += 1
            else:
                stats.rejected_by_schema += 1
    parsed = len(result.answers)
    chosen = [r for r in sorted(votes) if parsed and votes[r] / parsed >= config.relation_vote]
    stats.chosen += len(chosen)
    return [Pair(head, r, tail_type(r, head.type) or "") for r in chosen]
