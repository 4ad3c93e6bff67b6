"""Stage D2: the entity mentions of a chunk, from three spaCy sources, in this order of trust.

1. **gazetteer**: the store's entity names (Intent, Category, Brand, Concept), matched case-blind
   by spaCy's ``PhraseMatcher`` (also with "&" for "and"); the match carries its label;
2. **named entities**: spaCy's NER spans of kinds that name things a marketing KG holds
   (ORG, PRODUCT, EVENT, WORK_OF_ART, FAC);
3. **noun chunks**: spaCy's base noun phrases, without leading determiners and pronouns.

A later source's span that overlaps an earlier one is dropped; within a source the longest
spans win. Offsets are in the chunk's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mining.documents.chunk import TextChunk

NER_KINDS = frozenset({"ORG", "PRODUCT", "EVENT", "WORK_OF_ART", "FAC"})
LEADING = frozenset({"DET", "PRON"})


@dataclass(frozen=True)
class TextMention:
    chunk: str
    start: int
    end: int
    surface: str
    source: str  # "gazetteer", "ner" or "noun"
    label: str = ""  # gazetteer: the matched label; ner: the spaCy entity kind

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


class Gazetteer:
    """Known names per label as a case-blind phrase matcher over a spaCy vocabulary."""

    def __init__(self, nlp: Any, names: Mapping[str, Iterable[str]]) -> None:
        from spacy.matcher import PhraseMatcher

        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for label, values in names.items():
            texts = sorted({v for name in values for v in _written_forms(name) if v.strip()})
            self.matcher.add(label, list(nlp.tokenizer.pipe(texts)))
        self.vocab = nlp.vocab

    def spans(self, doc: Any) -> list[Any]:
        from spacy.tokens import Span

        return [Span(doc, s, e, label=self.vocab.strings[m]) for m, s, e in self.matcher(doc)]


def _written_forms(name: str) -> tuple[str, ...]:
    return (name, name.replace(" and ", " & ")) if " and " in name else (name,)


def _trimmed(span: Any) -> Any:
    start = span.start
    while start < span.end and (span.doc[start].pos_ in LEADING or span.doc[start].tag_ == "POS"):
        start += 1
    return span.doc[start : span.end] if start < span.end else None


def _take(spans: Sequence[Any], taken: list[tuple[int, int]]) -> list[Any]:
    from spacy.util import filter_spans

    kept = []
    for span in filter_spans(list(spans)):
        if not any(span.start_char < e and s < span.end_char for s, e in taken):
            kept.append(span)
    taken += [(s.start_char, s.end_char) for s in kept]
    return kept


def doc_mentions(doc: Any, chunks: Sequence[TextChunk], gazetteer: Gazetteer | None) -> list[TextMention]:
    """Every mention of the spaCy ``doc`` (one document), placed in its chunk."""
    taken: list[tuple[int, int]] = []
    found: list[tuple[Any, str, str]] = []
    if gazetteer is not None:
        found += [(s, "gazetteer", s.label_) for s in _take(gazetteer.spans(doc), taken)]
    found += [(s, "ner", s.label_) for s in _take([e for e in doc.ents if e.label_ in NER_KINDS], taken)]
    nouns = [t for t in (_trimmed(c) for c in doc.noun_chunks) if t is not None and len(t.text) > 2]
    found += [(s, "noun", "") for s in _take(nouns, taken)]
    out = []
    for span, source, label in sorted(found, key=lambda x: x[0].start_char):
        chunk = next((c for c in chunks if c.start <= span.start_char and span.end_char <= c.end), None)
        if chunk is not None:
            start = span.start_char - chunk.start
            out.append(TextMention(chunk.id, start, start + len(span.text), span.text, source, label))
    return out
