"""The ablation PAIR replaces: free relation generation (the paper's "uncontrollable relation
generation"; PAIR: Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276).

The LLM lists (relation phrase, tail) facts about the head with no relation set given. To compare
with adaptive filtering, each phrase is mapped back to the closest mined relation the schema
allows for the head's label, by MiniLM cosine between the phrase and the relation's name and
description; the tails then go through the same resolution and aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graph.schema import SCHEMA
from mining.llm.base import LLMClient
from mining.llm.recording import prompt_id
from mining.llm.structured import aask_structured
from mining.pipeline.config import MiningConfig
from mining.pipeline.embed import Embedder
from mining.pipeline.expand import ExpandStats, Mention
from mining.pipeline.relation_filter import tail_type
from mining.pipeline.types import Entity, Pair
from mining.prompts import EntityContext, FreeRelationsAnswer, build_free_relations


def relation_text(name: str) -> str:
    rel = SCHEMA.rel(name)
    return f"{name.lower().replace('_', ' ')}: {rel.description.split(' (e.g.')[0]}"


def map_phrases(phrases: Sequence[str], head_type: str, embed: Embedder) -> list[str]:
    """The allowed mined relation closest to each phrase."""
    options = [r.name for r in SCHEMA.mined_relations() if tail_type(r.name, head_type)]
    if not phrases or not options:
        return []
    sims = embed(list(phrases)) @ embed([relation_text(o) for o in options]).T
    return [options[int(i)] for i in np.argmax(sims, axis=1)]


async def free_mentions(
    client: LLMClient,
    head: Entity,
    ctx: EntityContext,
    config: MiningConfig,
    embed: Embedder,
    stats: ExpandStats,
) -> list[Mention]:
    """Tail mentions from one free-generation prompt, their phrases mapped to schema relations."""
    messages = build_free_relations(ctx, k=config.fanout)
    result = await aask_structured(
        client, "free_relations", messages, n=config.n_samples, temperature=config.sample_temperature
    )
    pid = prompt_id(messages)
    stats.prompts += 1
    stats.add(result)
    raw = []
    for index, answer in enumerate(result.answers):
        assert isinstance(answer, FreeRelationsAnswer)
        raw += [
            (index, t.relation, t.tail.strip()) for t in answer.triples[: config.fanout] if t.tail.strip()
        ]
    relations = map_phrases([phrase for _, phrase, _ in raw], head.type, embed)
    out = [
        Mention(Pair(head, rel, tail_type(rel, head.type) or ""), index, tail, pid)
        for (index, _, tail), rel in zip(raw, relations, strict=True)
    ]
    stats.mentions += len(out)
    return list(dict.fromkeys(out))
