"""Stages D1–D3 over a document set: spaCy parse → chunks → mentions → links.

spaCy reads every document once (``nlp.pipe``); the gazetteer holds the linker's known names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loaders.documents import SourceDocument
from mining.documents.chunk import TextChunk, chunk_document
from mining.documents.link import Link, Linker
from mining.documents.mentions import Gazetteer, TextMention, doc_mentions
from mining.documents.nlp import pipeline

BATCH = 64


@dataclass
class Analysis:
    chunks: list[TextChunk] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def by_chunk(self) -> dict[str, list[Link]]:
        out: dict[str, list[Link]] = defaultdict(list)
        for link in self.links:
            out[link.mention.chunk].append(link)
        return out


def parse_chunks(
    docs: Sequence[SourceDocument],
    max_chars: int,
    gazetteer_names: dict[str, list[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[TextChunk], list[TextMention]]:
    """Chunks of every document and, with ``gazetteer_names``, their mentions."""
    nlp = pipeline()
    gazetteer = Gazetteer(nlp, gazetteer_names) if gazetteer_names is not None else None
    chunks: list[TextChunk] = []
    mentions: list[TextMention] = []
    for doc, parsed in zip(docs, nlp.pipe((d.text for d in docs), batch_size=BATCH), strict=True):
        cut = chunk_document(doc.id, doc.text, [(s.start_char, s.end_char) for s in parsed.sents], max_chars)
        chunks += cut
        if gazetteer_names is not None:
            mentions += doc_mentions(parsed, cut, gazetteer)
        if progress:
            progress(1)
    return chunks, mentions


def analyse(
    docs: Sequence[SourceDocument],
    linker: Linker,
    max_chars: int,
    progress: Callable[[int], None] | None = None,
) -> Analysis:
    """Chunks, mentions and their links for ``docs``."""
    chunks, mentions = parse_chunks(docs, max_chars, linker.names(), progress)
    return Analysis(chunks, linker.link(mentions))
