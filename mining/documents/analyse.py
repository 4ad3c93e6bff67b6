"""Stages D1–D3 over a document set: spaCy parse → chunks → mentions → links.

spaCy's parse of each text (sentences, named entities, noun chunks as offsets) is cached on disk
per text and pipeline version (``$MOKG_CACHE/spacy``), like the LLM's answers, so a rebuild of
the same documents runs only the tokenizer (for the gazetteer) and the linker.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loaders.documents import SourceDocument
from mining.documents.chunk import TextChunk, chunk_document
from mining.documents.link import Link, Linker
from mining.documents.mentions import Gazetteer, Parse, TextMention, doc_mentions
from mining.documents.nlp import MODEL, pipeline

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


def cache_file() -> Path:
    root = os.environ.get("MOKG_CACHE")
    folder = Path(root) / "spacy" if root else Path.home() / ".cache" / "mokg" / "spacy"
    return folder / f"{MODEL}-{pipeline().meta.get('version', '')}.jsonl"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parses(texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[Parse]:
    """The parse of every text: from the cache, else from spaCy (then cached)."""
    path = cache_file()
    known: dict[str, Parse] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                known[row["k"]] = Parse.from_json(row["p"])
    todo = sorted({_key(t): t for t in texts if _key(t) not in known}.items())
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            for (key, _), doc in zip(
                todo, pipeline().pipe((t for _, t in todo), batch_size=BATCH), strict=True
            ):
                known[key] = Parse.of(doc)
                out.write(json.dumps({"k": key, "p": known[key].to_json()}) + "\n")
                if progress:
                    progress(1)
    if progress:
        progress(len(texts) - len(todo))
    return [known[_key(t)] for t in texts]


def parse_chunks(
    docs: Sequence[SourceDocument],
    max_chars: int,
    gazetteer_names: dict[str, list[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[TextChunk], list[TextMention]]:
    """Chunks of every document and, with ``gazetteer_names``, their mentions."""
    gazetteer = Gazetteer(pipeline(), gazetteer_names) if gazetteer_names is not None else None
    chunks: list[TextChunk] = []
    mentions: list[TextMention] = []
    for doc, parse in zip(docs, parses([d.text for d in docs], progress), strict=True):
        cut = chunk_document(doc.id, doc.text, parse.sentences, max_chars)
        chunks += cut
        if gazetteer is not None:
            mentions += doc_mentions(doc.text, parse, cut, gazetteer)
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
