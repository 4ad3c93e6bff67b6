"""Stage D1: documents → sentence-aligned chunks, the unit that is mined and cited.

Sentences come from spaCy's parser. A chunk takes whole sentences until the next one would pass
``max_chars``; a longer sentence is a chunk on its own. Offsets are character offsets: a chunk's
``start``/``end`` in its document's text, a sentence's in the chunk's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TextChunk:
    id: str  # "<document id>#<position>"
    document: str
    position: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # (start, end) in the chunk's text

    def sentence_at(self, offset: int) -> tuple[int, int]:
        """The sentence holding ``offset`` (the whole chunk if none does)."""
        for start, end in self.sentences:
            if start <= offset < end:
                return start, end
        return 0, len(self.text)


def chunk_id(document: str, position: int) -> str:
    return f"{document}#{position}"


def chunk_document(
    document: str, text: str, sentences: Sequence[tuple[int, int]], max_chars: int
) -> list[TextChunk]:
    """``text`` cut into chunks of whole sentences (``sentences``: (start, end) in ``text``)."""
    groups: list[list[tuple[int, int]]] = []
    for start, end in sentences:
        if end <= start or not text[start:end].strip():
            continue
        if groups and end - groups[-1][0][0] <= max_chars:
            groups[-1].append((start, end))
        else:
            groups.append([(start, end)])
    out = []
    for position, group in enumerate(groups):
        begin, finish = group[0][0], group[-1][1]
        inner = tuple((s - begin, e - begin) for s, e in group)
        out.append(
            TextChunk(
                chunk_id(document, position), document, position, begin, finish, text[begin:finish], inner
            )
        )
    return out
