"""Structured answers: ask with the task's JSON schema, parse, repair, re-ask, count, skip.

Each sample is parsed into the task's strict Pydantic model (``mining.prompts.parse_answer``). A
sample that does not parse gets a light repair (drop code fences, keep the outermost ``{...}``);
one that still fails is asked again, up to ``retries`` times, under a different cache salt so the
cached bad answer is not served back. What stays malformed is logged and skipped: it never reaches
the graph.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from mining.llm.base import LLMClient
from mining.prompts import Message, parse_answer, schema_of

log = logging.getLogger(__name__)
FENCE = re.compile(r"```[a-zA-Z]*")


@dataclass
class StructuredResult:
    """Parsed answers plus counts: samples that did not parse as sent (``malformed``), those the
    repair fixed (``repaired``) and those still malformed after every re-ask (``skipped``)."""

    answers: list[BaseModel] = field(default_factory=list)
    malformed: int = 0
    repaired: int = 0
    skipped: int = 0


@dataclass
class ParseCounts:
    """Malformed and skipped samples summed over many structured answers (a stage's counters)."""

    malformed: int = 0
    skipped: int = 0

    def add(self, result: StructuredResult) -> None:
        self.malformed += result.malformed
        self.skipped += result.skipped


def repair(text: str) -> str:
    """``text`` without code fences, cut to its outermost ``{...}`` (unchanged if it has none)."""
    body = FENCE.sub("", text)
    start, end = body.find("{"), body.rfind("}")
    return body[start : end + 1] if 0 <= start < end else body.strip()


def _parse(task: str, text: str, result: StructuredResult) -> BaseModel | None:
    try:
        return parse_answer(task, text)
    except ValueError:
        result.malformed += 1
    try:
        answer = parse_answer(task, repair(text))
    except ValueError as exc:
        log.info("malformed %s sample: %s", task, exc)
        return None
    result.repaired += 1
    return answer


def _take(task: str, texts: Sequence[str], wanted: int, result: StructuredResult) -> int:
    """Parse ``texts`` into ``result``; returns how many of ``wanted`` are still missing."""
    parsed = [a for a in (_parse(task, t, result) for t in texts) if a is not None]
    result.answers.extend(parsed)
    return max(0, wanted - len(parsed))


def _finish(task: str, missing: int, result: StructuredResult) -> StructuredResult:
    result.skipped = missing
    if missing:
        log.info("skipped %d malformed %s sample(s) after re-asking", missing, task)
    return result


def ask_structured(
    client: LLMClient,
    task: str,
    messages: Sequence[Message],
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 512,
    retries: int = 2,
) -> StructuredResult:
    """``n`` parsed answers to a PAIR prompt of ``task``, with malformed samples re-asked then skipped."""
    schema, result, missing = schema_of(task), StructuredResult(), n
    for attempt in range(retries + 1):
        texts = client.complete(
            messages,
            n=missing,
            temperature=temperature,
            max_tokens=max_tokens,
            response_schema=schema,
            extra=f"reask-{attempt}" if attempt else "",
        )
        missing = _take(task, texts, missing, result)
        if not missing:
            break
    return _finish(task, missing, result)


async def aask_structured(
    client: LLMClient,
    task: str,
    messages: Sequence[Message],
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 512,
    retries: int = 2,
) -> StructuredResult:
    """Async form of :func:`ask_structured`."""
    schema, result, missing = schema_of(task), StructuredResult(), n
    for attempt in range(retries + 1):
        texts = await client.acomplete(
            messages,
            n=missing,
            temperature=temperature,
            max_tokens=max_tokens,
            response_schema=schema,
            extra=f"reask-{attempt}" if attempt else "",
        )
        missing = _take(task, texts, missing, result)
        if not missing:
            break
    return _finish(task, missing, result)
