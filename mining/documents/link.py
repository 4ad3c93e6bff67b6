"""Stage D3: entity linking, mentions → the store's entities, or a new ``Concept`` when nothing fits.

Each mention is resolved (``mining.pipeline.resolve``: normalised name, then fuzzy characters,
then MiniLM cosine) within the labels its source allows, each label with its own embedding
threshold (names of brands are arbitrary strings, so their bar is higher):

- a gazetteer match: its own label;
- a named entity: Brand, then Concept;
- a noun chunk: Category, Intent, Concept.

The best resolution wins (normalised over fuzzy over embedding, then by similarity). A named
entity that links nowhere becomes a new ``Concept`` (a company or product the KG does not know
yet); an unlinked noun chunk is dropped (most are not entities: "a week", "the packaging").

Of mentions that overlap, one is kept: one linked to a known entity before a new Concept, then
the surer resolution (a name match before an embedding match), then the longer span, then the
more trusted source (gazetteer, named entity, noun chunk). So the noun chunk "air conditioner",
which matches the category *Air conditioners* by name, wins over a gazetteer hit on a shorter
known name inside it ("Air"); a brand matched by name inside a product phrase that only an
embedding ties to a category stays the brand.

Blocking: a noun chunk is compared with a label's names only if it shares a normalised word of
three or more letters with one of them (most noun chunks share none, and MiniLM would spend most
of the linking time on them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graph.store import GraphStore
from mining.documents.mentions import TextMention
from mining.pipeline.embed import Embedder
from mining.pipeline.resolve import Resolution, Resolver, concept_id, normalise
from mining.pipeline.seeds import store_entities
from mining.pipeline.types import Entity

LABELS = ("Intent", "Category", "Brand", "Concept")
THRESHOLDS: Mapping[str, float] = {"Intent": 0.8, "Category": 0.8, "Brand": 0.92, "Concept": 0.85}
CANDIDATES = {"ner": ("Brand", "Concept"), "noun": ("Category", "Intent", "Concept")}
RANK = {"normalised": 3, "fuzzy": 2, "embedding": 1, "unresolved": 0}


@dataclass(frozen=True)
class Link:
    mention: TextMention
    entity: Entity | None
    method: str  # normalised, fuzzy, embedding, new (a Concept made here) or unresolved
    score: float


class Linker:
    """Links mentions to the entities of one store (one resolver per label)."""

    def __init__(
        self, entities: Sequence[Entity], embed: Embedder, thresholds: Mapping[str, float] = THRESHOLDS
    ) -> None:
        self.resolvers = {
            label: Resolver([e for e in entities if e.type == label], embed, thresholds[label])
            for label in LABELS
        }
        self.words = {
            label: {w for e in entities if e.type == label for w in _words(e.name)} for label in LABELS
        }

    @classmethod
    def from_store(
        cls, store: GraphStore, embed: Embedder, thresholds: Mapping[str, float] = THRESHOLDS
    ) -> Linker:
        return cls([e for label in LABELS for e in store_entities(store, label)], embed, thresholds)

    def names(self) -> dict[str, list[str]]:
        """The known names per label (the gazetteer's phrases)."""
        return {label: [e.name for e in r.entities(label)] for label, r in self.resolvers.items()}

    def link(self, mentions: Sequence[TextMention]) -> list[Link]:
        best: dict[int, tuple[Resolution, str]] = {}
        for label in LABELS:
            wanted = [i for i, m in enumerate(mentions) if label in _labels(m) and self._blocked_in(m, label)]
            surfaces = sorted({mentions[i].surface for i in wanted})
            resolved = dict(zip(surfaces, self.resolvers[label].resolve_many(surfaces, label), strict=True))
            for i in wanted:
                res = resolved[mentions[i].surface]
                if res.entity is not None and (i not in best or _better(res, best[i][0])):
                    best[i] = (res, label)
        return _select([_decide(m, best.get(i)) for i, m in enumerate(mentions)])

    def _blocked_in(self, mention: TextMention, label: str) -> bool:
        return mention.source != "noun" or bool(_words(mention.surface) & self.words[label])


def _words(name: str) -> set[str]:
    return {w for w in normalise(name).split() if len(w) >= 3}


SOURCE_RANK = {"gazetteer": 0, "ner": 1, "noun": 2}


def _select(links: list[Link]) -> list[Link]:
    """Of overlapping mentions in a chunk, the best link (see the module docstring); mentions that
    linked nowhere never block another."""

    def order(link: Link) -> tuple[int, int, int, int, int]:
        m = link.mention
        known = link.entity is not None and not link.entity.new
        return (not known, -RANK.get(link.method, 0), m.start - m.end, SOURCE_RANK[m.source], m.start)

    kept: list[Link] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for link in sorted(links, key=order):
        m, spans = link.mention, taken.setdefault(link.mention.chunk, [])
        if link.entity is None or any(m.start < e and s < m.end for s, e in spans):
            continue
        kept.append(link)
        spans.append((m.start, m.end))
    return sorted(kept, key=lambda lk: (lk.mention.chunk, lk.mention.start))


def _labels(mention: TextMention) -> tuple[str, ...]:
    return (mention.label,) if mention.source == "gazetteer" else CANDIDATES[mention.source]


def _better(new: Resolution, old: Resolution) -> bool:
    return (RANK[new.method], new.similarity) > (RANK[old.method], old.similarity)


def _decide(mention: TextMention, best: tuple[Resolution, str] | None) -> Link:
    if best is not None:
        res = best[0]
        return Link(mention, res.entity, res.method, res.similarity)
    if mention.source == "ner":
        return Link(
            mention, Entity(concept_id(mention.surface), mention.surface, "Concept", new=True), "new", 0.0
        )
    return Link(mention, None, "unresolved", 0.0)
