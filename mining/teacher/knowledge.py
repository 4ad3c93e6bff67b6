"""What the world's teacher knows: the ground-truth KG of the ontology, looked up by name.

The teacher answers PAIR's prompts (Gan et al., "Making Large Language Models Better Knowledge
Miners for Online Marketing with Progressive Prompting Augmentation", arXiv 2312.05276) about
named entities, so this index is keyed by ``(name, type)``, names compared case-insensitively
after trimming. Its facts are exactly the mined relations the ontology states
(``loaders/world/ontology/relations.json`` plus the category tree):

- ``NEEDS``: Intent -> Category, the categories named in relations.json (mid-level names as
  stated, not expanded to leaves), with their weights;
- ``CO_OCCURS_WITH``: Intent -> Intent, in both directions (listed once, symmetric);
- ``PRECEDES``: Intent -> Intent, head before tail;
- ``SERVES``: Category -> Intent;
- ``SUBCATEGORY_OF``: Category -> its parent category, weight 1.

``BELONGS_TO``, ``MADE_BY`` and ``RELATED_TO`` have no facts here (items and concepts are not part
of the ontology), so the teacher never has true tails for them.

Near misses are the plausible wrong answers a language model confuses with a true tail: for a
category, its siblings (same parent) first, then its cousins (children of the parent's
siblings); for an intent, the other intents of its group. For an entity the teacher does not know,
:meth:`TeacherKnowledge.lookalikes` finds known entities of the same type whose names share a word
with it; their facts are what a model would guess from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import InputError
from loaders.world.layout import WorldDir
from loaders.world.ontology import DEFAULT_DIR, Ontology, load_ontology

if TYPE_CHECKING:
    from mining.teacher.passages import PassageKnowledge

TAIL_TYPES = {
    "NEEDS": "Category",
    "CO_OCCURS_WITH": "Intent",
    "PRECEDES": "Intent",
    "SERVES": "Intent",
    "SUBCATEGORY_OF": "Category",
}
WORD = re.compile(r"[a-z0-9]{4,}")


@dataclass(frozen=True)
class Fact:
    """One true tail of (head, relation): its display name, label and weight in (0, 1]."""

    tail: str
    type: str
    weight: float


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str


def key(name: str) -> str:
    """The look-up form of a name: trimmed, case-folded, inner whitespace collapsed."""
    return " ".join(name.split()).casefold()


@dataclass
class TeacherKnowledge:
    """Facts and near misses by entity name; build it with :meth:`from_ontology`."""

    ontology: Ontology
    entities: dict[tuple[str, str], Entity] = field(default_factory=dict)
    facts: dict[str, dict[str, list[Fact]]] = field(default_factory=dict)  # id -> relation -> facts
    passages: PassageKnowledge | None = None  # what a world's documents state (passages.py)

    @classmethod
    def from_ontology(cls, ontology: Ontology) -> TeacherKnowledge:
        """Index every intent and category with its true tails, strongest first."""
        kb = cls(ontology)
        for intent in ontology.intents.values():
            kb.entities[key(intent.name), "Intent"] = Entity(intent.id, intent.name, "Intent")
        for cat in ontology.categories.values():
            kb.entities[key(cat.name), "Category"] = Entity(cat.id, cat.name, "Category")
        edges = [(r.head, r.type, r.tail, r.weight) for r in ontology.relations]
        edges += [(t, r, h, w) for h, r, t, w in edges if r == "CO_OCCURS_WITH"]
        edges += [(h, r, t, w) for h, r, t, w in ontology.triples() if r == "SUBCATEGORY_OF"]
        for head, rel, tail, weight in edges:
            fact = Fact(kb.name_of(tail), TAIL_TYPES[rel], weight)
            kb.facts.setdefault(head, {}).setdefault(rel, []).append(fact)
        for by_rel in kb.facts.values():
            for facts in by_rel.values():
                facts.sort(key=lambda f: (-f.weight, f.tail))
        return kb

    @classmethod
    def load(cls, world_or_ontology_dir: Path | str | None = None) -> TeacherKnowledge:
        """From an ontology directory, a world directory (its ontology, hash-checked) or the shipped one."""
        if world_or_ontology_dir is None:
            return cls.from_ontology(load_ontology())
        path = Path(world_or_ontology_dir)
        if (path / "relations.json").exists():
            return cls.from_ontology(load_ontology(path))
        manifest = path / "world.json"
        if not manifest.exists():
            raise InputError(
                f"{path} is neither an ontology directory (relations.json) nor a world (world.json); "
                "pass one of those, or nothing for the shipped ontology"
            )
        onto = load_ontology(DEFAULT_DIR)
        want = WorldDir(path).manifest().get("ontology", {}).get("sha256")
        if want != onto.content_hash():
            raise InputError(
                f"the world in {path} was generated from another ontology (sha256 {want}); "
                "regenerate it, or pass that ontology's directory instead"
            )
        from mining.teacher.passages import PassageKnowledge

        kb = cls.from_ontology(onto)
        kb.passages = PassageKnowledge.load(path)
        return kb

    def name_of(self, node_id: str) -> str:
        if node_id in self.ontology.intents:
            return self.ontology.intents[node_id].name
        return self.ontology.categories[node_id].name

    def find(self, name: str, type_: str) -> Entity | None:
        """The known entity with this name and label, or None."""
        return self.entities.get((key(name), type_))

    def relations(self, name: str, type_: str) -> dict[str, list[Fact]]:
        """Relation -> true tails (strongest first) of an entity; empty when it is unknown."""
        ent = self.find(name, type_)
        return dict(self.facts.get(ent.id, {})) if ent else {}

    def tails(self, name: str, type_: str, relation: str) -> list[Fact]:
        """True tails of (entity, relation), strongest first."""
        return list(self.relations(name, type_).get(relation, []))

    def weight(self, head: str, head_type: str, relation: str, tail: str) -> float | None:
        """The weight of a true triple, or None when the triple is not in the truth."""
        for fact in self.tails(head, head_type, relation):
            if key(fact.tail) == key(tail):
                return fact.weight
        return None

    def near_misses(self, tail: str, type_: str, cousins: bool = True) -> list[str]:
        """Plausible wrong answers for ``tail``: siblings then cousins, or same-group intents."""
        ent = self.find(tail, type_)
        if ent is None:
            return []
        if type_ == "Intent":
            group = self.ontology.intents[ent.id].group
            same = [i.name for i in self.ontology.intents.values() if i.group == group and i.id != ent.id]
            return sorted(same)
        parent = self.ontology.categories[ent.id].parent
        if parent is None:
            roots = [c for c in self.ontology.categories.values() if c.parent is None]
            return sorted(c.name for c in roots if c.id != ent.id)
        siblings = [c for c in self.ontology.children(parent) if c != ent.id]
        grand = self.ontology.categories[parent].parent
        uncles = self.ontology.children(grand) if grand and cousins else []
        others = [c for u in uncles if u != parent for c in self.ontology.children(u)]
        return [self.name_of(c) for c in siblings + others]

    def lookalikes(self, name: str, type_: str) -> list[Entity]:
        """Known entities of the same label sharing a word of 4+ letters with ``name`` (for guessing)."""
        words = set(WORD.findall(key(name)))
        found = [
            ent
            for (k, t), ent in sorted(self.entities.items())
            if t == type_ and words & set(WORD.findall(k))
        ]
        return found

    def names_of_type(self, type_: str) -> list[str]:
        """Every known name of a label, sorted (the last-resort guessing pool)."""
        return sorted(ent.name for (_, t), ent in self.entities.items() if t == type_)

    def common_relation(self, type_: str) -> str | None:
        """The relation most entities of a label have (what a model guesses for an unknown one)."""
        counts: dict[str, int] = {}
        for (_, t), ent in self.entities.items():
            if t == type_:
                for rel in self.facts.get(ent.id, {}):
                    counts[rel] = counts.get(rel, 0) + 1
        return max(sorted(counts), key=counts.__getitem__) if counts else None

    def guess_pool(self, head: str, head_type: str, relation: str) -> list[str]:
        """Wrong but plausible tails of (head, relation), most plausible first, true tails excluded.

        Near misses of the true tails (all siblings before any cousin); else the tails (and their
        near misses) of look-alike heads;
        else, for intent tails, the head's own near misses; else every name of the tail label.
        """
        tail_type = TAIL_TYPES.get(relation)
        if tail_type is None:
            return []
        true = {key(f.tail) for f in self.tails(head, head_type, relation)}
        seeds = [f.tail for f in self.tails(head, head_type, relation)]
        pool = [m for s in seeds for m in self.near_misses(s, tail_type, cousins=False)]
        pool += [m for s in seeds for m in self.near_misses(s, tail_type)]
        if not pool:
            for ent in self.lookalikes(head, head_type):
                for fact in self.facts.get(ent.id, {}).get(relation, []):
                    pool += [fact.tail, *self.near_misses(fact.tail, tail_type)]
        if not pool and tail_type == head_type == "Intent":
            pool = self.near_misses(head, head_type)
        if not pool:
            pool = self.names_of_type(tail_type)
        return [p for p in dict.fromkeys(pool) if key(p) not in true and key(p) != key(head)]
