"""Stage 2 of PAIR, progressive entity expansion.

Paper (PAIR): Gan et al., "Making Large Language Models Better Knowledge Miners for Online Marketing with
Progressive Prompting Augmentation", arXiv 2312.05276.

For each (head, relation) the LLM names tail entities, ``n`` samples per prompt. With
``expansion="progressive"`` a pair is asked again in later rounds with the tails accepted so far
listed ("do not repeat; add others"), so each prompt builds on the last; ``single_shot`` asks once.
The raw answers become :class:`Mention` records: one per (sample, tail name), for aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graph.schema import SCHEMA
from mining.llm.base import LLMClient
from mining.llm.recording import prompt_id
from mining.llm.structured import ParseCounts, aask_structured
from mining.pipeline.config import MiningConfig
from mining.pipeline.types import Pair
from mining.prompts import (
    EntityContext,
    ExpansionAnswer,
    PassageExpansionAnswer,
    build_entity_expansion,
    build_passage_expansion,
)


@dataclass(frozen=True)
class Mention:
    """One tail name in one sample of one prompt."""

    pair: Pair
    sample: int
    surface: str
    prompt_id: str
    quote: str = ""  # document mining: the words of the passage the answer cited


@dataclass
class ExpandStats(ParseCounts):
    prompts: int = 0
    mentions: int = 0


async def expand_pair(
    client: LLMClient,
    pair: Pair,
    ctx: EntityContext,
    found: Sequence[str],
    round_: int,
    config: MiningConfig,
    stats: ExpandStats,
    passage: str | None = None,
) -> list[Mention]:
    """Tail mentions for ``pair`` from one (possibly augmented) expansion prompt (``passage``: the
    tails the text states, each with the words it cites)."""
    rel = SCHEMA.rel(pair.relation)
    if passage is None:
        task = "entity_expansion"
        messages = build_entity_expansion(
            ctx, rel, pair.tail_type, found=found, round_=round_, k=config.fanout
        )
    else:
        task = "doc_entity_expansion"
        messages = build_passage_expansion(
            ctx, rel, pair.tail_type, passage, found=found, round_=round_, k=config.fanout
        )
    result = await aask_structured(
        client, task, messages, n=config.n_samples, temperature=config.sample_temperature
    )
    pid = prompt_id(messages)
    stats.prompts += 1
    stats.add(result)
    out = []
    for index, answer in enumerate(result.answers):
        assert isinstance(answer, ExpansionAnswer | PassageExpansionAnswer)
        said: dict[str, str] = {}
        for tail in answer.tails[: config.fanout]:
            if tail.name.strip():
                said.setdefault(tail.name.strip(), getattr(tail, "quote", ""))
        out += [Mention(pair, index, name, pid, quote) for name, quote in said.items()]
    stats.mentions += len(out)
    return out
