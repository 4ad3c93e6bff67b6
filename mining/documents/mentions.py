"""Stage D2: the entity mentions of a chunk, from three spaCy sources, in this order of trust.

1. **gazetteer**: the store's entity names (Intent, Category, Brand, Concept), matched case-blind
   by spaCy's ``PhraseMatcher`` over the tokens (also with "&" for "and"); the match carries its
   label;
2. **named entities**: spaCy's NER spans of kinds that name things a marketing KG holds
   (ORG, PRODUCT, EVENT, WORK_OF_ART, FAC);
3. **noun chunks**: spaCy's base noun phrases, without leading determiners and pronouns.

Within a source the longest spans win; spans of different sources may overlap here, and the
linker keeps, of overlapping mentions, the one that links best (``link.py``). The parser's part
(sentences, entities, noun chunks) is a :class:`Parse` of character
offsets, so it can be cached per text; the gazetteer needs only the tokenizer. Offsets of a
:class:`TextMention` are in its chunk's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mining.documents.chunk import TextChunk

NER_KINDS = frozenset({"ORG", "PRODUCT", "EVENT", "WORK_OF_ART", "FAC"})
LEADING = frozenset({"DET", "PRON"})
Span = tuple[int, int, str]  # start, end (characters in the document), label ("" for noun chunks)


@dataclass(frozen=True)
class Parse:
    """What spaCy's parser and NER found in one document, as character offsets (cacheable)."""

    sentences: tuple[tuple[int, int], ...]
    entities: tuple[Span, ...]
    nouns: tuple[Span, ...]

    @classmethod
    def of(cls, doc: Any) -> Parse:
        nouns = []
        for chunk in doc.noun_chunks:
            start = chunk.start
            while start < chunk.end and (doc[start].pos_ in LEADING or doc[start].tag_ == "POS"):
                start += 1
            if start < chunk.end:
                span = doc[start : chunk.end]
                nouns.append((span.start_char, span.end_char, ""))
        return cls(
            tuple((s.start_char, s.end_char) for s in doc.sents),
            tuple((e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in NER_KINDS),
            tuple(nouns),
        )

    def to_json(self) -> list[Any]:
        return [list(map(list, self.sentences)), list(map(list, self.entities)), list(map(list, self.nouns))]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Parse:
        return cls(*(tuple(tuple(x) for x in part) for part in raw))


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

        self.nlp = nlp
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for label, values in names.items():
            texts = sorted({v for name in values for v in _written_forms(name) if v.strip()})
            self.matcher.add(label, list(nlp.tokenizer.pipe(texts)))

    def spans(self, text: str) -> list[Span]:
        doc = self.nlp.make_doc(text)
        strings = self.nlp.vocab.strings
        return [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1]), strings[m]) for m, s, e in self.matcher(doc)]


def _written_forms(name: str) -> tuple[str, ...]:
    return (name, name.replace(" and ", " & ")) if " and " in name else (name,)


def _take(spans: Sequence[Span], taken: list[tuple[int, int]]) -> list[Span]:
    """Longest first, then leftmost: the spans that overlap neither ``taken`` nor each other."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if not any(span[0] < e and s < span[1] for s, e in taken):
            kept.append(span)
            taken.append((span[0], span[1]))
    return kept


def doc_mentions(
    text: str, parse: Parse, chunks: Sequence[TextChunk], gazetteer: Gazetteer | None
) -> list[TextMention]:
    """Every mention of one document, placed in its chunk (sources may overlap each other)."""
    found: list[tuple[Span, str]] = []
    if gazetteer is not None:
        found += [(s, "gazetteer") for s in _take(gazetteer.spans(text), [])]
    found += [(s, "ner") for s in _take(parse.entities, [])]
    found += [(s, "noun") for s in _take([n for n in parse.nouns if n[1] - n[0] > 2], [])]
    out = []
    for (start, end, label), source in sorted(found, key=lambda x: x[0][0]):
        chunk = next((c for c in chunks if c.start <= start and end <= c.end), None)
        if chunk is not None:
            at = start - chunk.start
            out.append(TextMention(chunk.id, at, at + end - start, text[start:end], source, label))
    return out
