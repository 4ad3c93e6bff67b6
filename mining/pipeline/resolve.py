"""Entity resolution: a tail name from the LLM → the store entity it means, or a new ``Concept``.

PAIR's aggregation merges surface variants of one entity before counting and writing (Gan et al.,
"Making Large Language Models Better Knowledge Miners for Online Marketing with Progressive
Prompting Augmentation", arXiv 2312.05276). A name is resolved within the label the relation's
schema allows, in three steps:

1. **normalised match**: case-folded, "&" → "and", punctuation and hyphens → spaces, generic head
   nouns dropped ("products", "items", "supplies"), each word singularised; equal keys match;
2. **fuzzy match**: the closest normalised key by character similarity (difflib ratio ≥
   ``fuzzy``), which catches spelling slips that embeddings of word pieces miss; a name of several
   words is compared only with keys that share one of its words (most of the time went to
   comparing every name with every key);
3. **embedding match**: the nearest name of the label by MiniLM cosine, if ≥ ``threshold``;
4. otherwise **unresolved**: the writer makes a new ``Concept`` where the schema allows the
   relation to end in one, and drops the tail where it does not.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graph.store import GraphStore
from mining.pipeline.embed import Embedder
from mining.pipeline.seeds import store_entities
from mining.pipeline.types import Entity

GENERIC = {"products", "product", "items", "item", "supplies", "supply"}
RESOLVABLE = ("Intent", "Category", "Brand")


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def normalise(name: str) -> str:
    """The matching key of a name (see the module docstring, step 1)."""
    text = name.casefold().replace("&", " and ")
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w]
    while len(words) > 1 and words[-1] in GENERIC:
        words.pop()
    return " ".join(_singular(w) for w in words)


def concept_id(name: str) -> str:
    return "concept_" + normalise(name).replace(" ", "_")[:80]


@dataclass(frozen=True)
class Resolution:
    entity: Entity | None
    method: str  # "normalised", "fuzzy", "embedding" or "unresolved"
    similarity: float = 1.0


class Resolver:
    """Names → entities of one store, per label (built once per job)."""

    def __init__(
        self, entities: Sequence[Entity], embed: Embedder, threshold: float = 0.8, fuzzy: float = 0.85
    ) -> None:
        self.embed, self.threshold, self.fuzzy = embed, threshold, fuzzy
        self.by_key: dict[tuple[str, str], Entity] = {}
        self.by_label: dict[str, list[Entity]] = {}
        for ent in sorted(entities, key=lambda e: e.ref):
            self.by_key.setdefault((ent.type, normalise(ent.name)), ent)
            self.by_label.setdefault(ent.type, []).append(ent)
        self._matrix: dict[str, np.ndarray] = {}
        self._keys: dict[str, list[str]] = {}
        self._by_word: dict[str, dict[str, list[str]]] = {}

    @classmethod
    def from_store(cls, store: GraphStore, embed: Embedder, threshold: float = 0.8) -> Resolver:
        entities = [e for label in RESOLVABLE for e in store_entities(store, label)]
        return cls(entities, embed, threshold)

    def entities(self, label: str) -> list[Entity]:
        return list(self.by_label.get(label, []))

    def resolve(self, name: str, label: str) -> Resolution:
        """The entity ``name`` means among ``label``'s entities (see the module docstring)."""
        return self.resolve_many([name], label)[0]

    def resolve_many(self, names: Sequence[str], label: str) -> list[Resolution]:
        """:meth:`resolve` for many names at once (one embedding batch)."""
        out: list[Resolution | None] = [self._exact(n, label) for n in names]
        todo = [i for i, r in enumerate(out) if r is None]
        pool = self.by_label.get(label, [])
        if todo and pool:
            sims = self.embed([names[i] for i in todo]) @ self._names_matrix(label).T
            for row, i in enumerate(todo):
                best = int(np.argmax(sims[row]))
                score = float(sims[row, best])
                ok = score >= self.threshold
                out[i] = Resolution(pool[best] if ok else None, "embedding" if ok else "unresolved", score)
        return [r if r is not None else Resolution(None, "unresolved", 0.0) for r in out]

    def _exact(self, name: str, label: str) -> Resolution | None:
        key = normalise(name)
        hit = self.by_key.get((label, key))
        if hit is not None:
            return Resolution(hit, "normalised")
        close = difflib.get_close_matches(key, self._fuzzy_pool(key, label), n=1, cutoff=self.fuzzy)
        if close:
            ratio = difflib.SequenceMatcher(None, key, close[0]).ratio()
            return Resolution(self.by_key[label, close[0]], "fuzzy", ratio)
        return None

    def _fuzzy_pool(self, key: str, label: str) -> list[str]:
        """The keys a fuzzy match may pick: for a name of several words, those sharing a word with
        it (a slip rarely hits every word); for one word, all of the label's keys."""
        keys = self._keys.setdefault(label, [k for lab, k in self.by_key if lab == label])
        words = key.split()
        if len(words) < 2:
            return keys
        if label not in self._by_word:
            index: dict[str, list[str]] = {}
            for k in keys:
                for w in set(k.split()):
                    index.setdefault(w, []).append(k)
            self._by_word[label] = index
        found = {k for w in words for k in self._by_word[label].get(w, [])}
        return sorted(found)

    def _names_matrix(self, label: str) -> np.ndarray:
        if label not in self._matrix:
            self._matrix[label] = self.embed([e.name for e in self.by_label[label]])
        return self._matrix[label]
