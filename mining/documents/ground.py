"""Stage D5: grounding, where in the chunk a candidate triple is stated.

A passage-grounded answer names tails with the words it cites (``quote``). The span of a
candidate is the cited words when they occur in the chunk (case-blind, whitespace collapsed),
else the sentence(s) where a surface form of the tail occurs ("&" and "and" both tried). A
candidate with no span names something the passage does not contain: with ``grounding`` on it is
not accepted (the LLM's knowledge, not the document's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mining.documents.chunk import TextChunk

MIN_QUOTE = 8


def cleaned(text: str) -> tuple[str, list[int]]:
    """``text`` as prompts quote it (runs of newlines, tabs and double quotes → one space),
    lower-cased, with the original offset of every character."""
    out, where, previous = [], [], False
    for i, ch in enumerate(text):
        gap = ch in '\r\n\t"'
        if gap and previous:
            continue
        out.append(" " if gap else ch.casefold()[:1] or ch)
        where.append(i)
        previous = gap
    return "".join(out), where


def _find_all(haystack: str, needle: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(needle), haystack)] if needle else []


def _forms(surface: str) -> set[str]:
    low = surface.casefold().strip()
    return {low, low.replace(" and ", " & "), low.replace(" & ", " and ")} - {""}


def locate(chunk: TextChunk, surfaces: Iterable[str], quotes: Iterable[str]) -> set[tuple[int, int]]:
    """Character spans of ``chunk.text`` that state the candidate (empty: not in the passage)."""
    low, where = cleaned(chunk.text)
    for quote in quotes:
        q = quote.strip().casefold()
        if len(q) >= MIN_QUOTE and q in low:
            at = low.index(q)
            return {(where[at], where[at + len(q) - 1] + 1)}
    spans = set()
    for surface in surfaces:
        for form in _forms(surface):
            spans |= {chunk.sentence_at(where[at]) for at in _find_all(low, form)}
    return spans
