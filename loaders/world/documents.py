"""Documents the world's facts are written in, with a record of what each one states.

Generative story (seeded by ``(seed, 7)``; ``n_documents`` in all):
- **Product descriptions** (half of the rest, a sample of items): sentences naming the
  item's brand (MADE_BY), its leaf category (BELONGS_TO) and an intent whose needs include that
  leaf (SERVES), each in its own sentence and in a shuffled order, plus a feature sentence and
  distractors that name another category or brand without stating anything about the item, and
  now and then an out-of-KG brand ("a partner brand, Velorin, ...").
- **Campaign briefs** (one per campaign) and **guides** (a quarter of the rest, one per sampled
  intent): for the intent, 2–4 of its true NEEDS tails, and a PRECEDES and a CO_OCCURS_WITH
  partner where the truth has one; a distractor category ("last season we promoted …") and, half
  the time, an out-of-KG agency name.
- **Reviews** (the rest): an item bought for an intent it serves (SERVES), filler, a
  distractor brand.

Names are sometimes written as surface variants (lower case, "&" for "and", a singular last
word), so linking is not string equality. ``visible/documents/documents.jsonl`` holds ``id,
title, text, domain, item``; ``hidden/documents/statements.parquet`` every stated fact with the
character span of the sentence that states it; ``hidden/documents/mentions.parquet`` every
written entity name with its span and the entity it means (empty for out-of-KG names).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from loaders.world.catalogue import Catalogue
from loaders.world.ontology import Ontology

NOVEL = ("Velorin", "Quastra", "Brindlewood", "Okavo", "Tessaly", "Marrowfield", "Zentrova", "Ilvane")
Part = str | tuple[str, str, str]  # text, or (name, label, entity id) of a named entity
FILLER = (
    "Delivery took {n} days.",
    "The packaging was plain and sturdy.",
    "Customer service answered within a day.",
    "I would order from this shop again.",
)


@dataclass
class Writer:
    """One document being written: its text, and the spans of what it names and states."""

    doc: str
    rng: np.random.Generator
    text: str = ""
    mentions: list[dict[str, Any]] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)

    def sentence(self, parts: Sequence[Part], states: Sequence[tuple[str, str, str]] = ()) -> None:
        """Append one sentence from text parts and (name, label, entity id) names; ``states``:
        (relation, head ref, tail ref) facts it states, refs as ``label:id``."""
        start = len(self.text) + (1 if self.text else 0)
        self.text += " " if self.text else ""
        for part in parts:
            if isinstance(part, str):
                self.text += part
                continue
            name, label, entity = part
            surface = self._variant(name)
            self.mentions.append(
                {
                    "doc": self.doc,
                    "start": len(self.text),
                    "end": len(self.text) + len(surface),
                    "surface": surface,
                    "label": label,
                    "entity": entity,
                }
            )
            self.text += surface
        for relation, head, tail in states:
            self.statements.append(
                {
                    "doc": self.doc,
                    "relation": relation,
                    "head": head,
                    "tail": tail,
                    "start": start,
                    "end": len(self.text),
                }
            )

    def _variant(self, name: str) -> str:
        """As written: lower case (15%), "&" for "and" (7%), the last word singular (10%)."""
        draw = self.rng.random()
        if draw < 0.15:
            return name.lower()
        if draw < 0.22 and " and " in name:
            return name.replace(" and ", " & ")
        if draw < 0.32 and len(name) > 4 and name.endswith("s") and not name.endswith("ss"):
            return name[:-1]
        return name


def _ref(label: str, node: str) -> str:
    return f"{label}:{node}"


def serves_map(onto: Ontology) -> dict[str, list[str]]:
    """Leaf → the intents whose needs include it (the truth an item of that leaf serves)."""
    out: dict[str, list[str]] = {}
    for intent in sorted(onto.intents):
        for leaf in onto.needs(intent):
            out.setdefault(leaf, []).append(intent)
    return out


@dataclass(frozen=True)
class Facts:
    """What the writers draw from: the ontology, brand names, leaves and the SERVES truth."""

    onto: Ontology
    brands: dict[str, str]
    leaves: list[str]
    serves: dict[str, list[str]]


def _description(w: Writer, f: Facts, item: dict[str, Any]) -> None:
    rng, onto, brands, leaf = w.rng, f.onto, f.brands, f.onto.categories[item["leaf"]]
    it = _ref("Item", item["id"])
    made, belongs = (
        ("MADE_BY", it, _ref("Brand", item["brand"])),
        ("BELONGS_TO", it, _ref("Category", leaf.id)),
    )
    adjective = str(item["name"])[: -len(leaf.name) - 1]
    title: list[Part] = [(brands[item["brand"]], "Brand", item["brand"]), f" {adjective} "]
    w.sentence([*title, (leaf.name.lower(), "Category", leaf.id), "."], [made, belongs])
    sentences: list[tuple[list[Part], list[tuple[str, str, str]]]] = [
        (["It is made by ", (brands[item["brand"]], "Brand", item["brand"]), "."], [made]),
        (["You will find it in our ", (leaf.name, "Category", leaf.id), " range."], [belongs]),
    ]
    intents = f.serves.get(leaf.id, [])
    if intents:
        intent = onto.intents[intents[int(rng.integers(len(intents)))]]
        sentences.append(
            (
                ["It is a favourite with people in the middle of ", (intent.name, "Intent", intent.id), "."],
                [("SERVES", it, _ref("Intent", intent.id))],
            )
        )
    other = onto.categories[f.leaves[int(rng.integers(len(f.leaves)))]]
    if other.id != leaf.id:
        sentences.append((["Shoppers who buy it also browse ", (other.name, "Category", other.id), "."], []))
    rival = list(brands)[int(rng.integers(len(brands)))]
    if rival != item["brand"]:
        sentences.append(
            (["It costs less than comparable offers from ", (brands[rival], "Brand", rival), "."], [])
        )
    if rng.random() < 0.25:
        novel = NOVEL[int(rng.integers(len(NOVEL)))]
        sentences.append((["A partner brand, ", (novel, "Brand", ""), ", handles the returns."], []))
    for k in rng.permutation(len(sentences)):
        w.sentence(*sentences[k])


def _intent_page(w: Writer, f: Facts, intent_id: str, header: str, opening: str) -> None:
    """A campaign brief or a guide about one intent: its needs, what precedes or co-occurs."""
    rng, onto, intent = w.rng, f.onto, f.onto.intents[intent_id]
    head = _ref("Intent", intent.id)
    needs = sorted(r.tail for r in onto.relations_of("NEEDS") if r.head == intent.id)
    size = min(len(needs), int(rng.integers(2, 5)))
    chosen = [needs[i] for i in sorted(rng.choice(len(needs), size=size, replace=False))]
    w.sentence([header])
    w.sentence([opening, (intent.name, "Intent", intent.id), "."])
    first, rest = chosen[:2], chosen[2:]
    parts: list[Part] = ["They typically need "]
    for k, cat in enumerate(first):
        parts += [" and " if k else "", (onto.categories[cat].name, "Category", cat)]
    w.sentence([*parts, "."], [("NEEDS", head, _ref("Category", cat)) for cat in first])
    for cat in rest:
        w.sentence(
            ["Many of them also need ", (onto.categories[cat].name, "Category", cat), "."],
            [("NEEDS", head, _ref("Category", cat))],
        )
    for rel, text in (
        ("PRECEDES", " usually comes shortly before "),
        ("CO_OCCURS_WITH", " often goes with "),
    ):
        partners = sorted(r.tail for r in onto.relations_of(rel) if r.head == intent.id)
        if partners:
            other = onto.intents[partners[int(rng.integers(len(partners)))]]
            named: list[Part] = [(intent.name.capitalize(), "Intent", intent.id), text]
            w.sentence(
                [*named, (other.name, "Intent", other.id), "."], [(rel, head, _ref("Intent", other.id))]
            )
    distractor = onto.categories[f.leaves[int(rng.integers(len(f.leaves)))]]
    w.sentence(["Last season we promoted ", (distractor.name, "Category", distractor.id), " instead."])
    if rng.random() < 0.5:
        agency = NOVEL[int(rng.integers(len(NOVEL)))] + " Studio"
        w.sentence(["Our agency, ", (agency, "Brand", ""), ", will run the creative."])


def _review(w: Writer, f: Facts, item: dict[str, Any]) -> None:
    rng, onto, brands = w.rng, f.onto, f.brands
    intents = f.serves.get(item["leaf"], [])
    fillers = [FILLER[i].format(n=int(rng.integers(2, 9))) for i in rng.permutation(len(FILLER))[:2]]
    w.sentence([fillers[0]])
    if intents:
        intent = onto.intents[intents[int(rng.integers(len(intents)))]]
        w.sentence(
            ["I bought it for ", (intent.name, "Intent", intent.id), " and it did the job."],
            [("SERVES", _ref("Item", item["id"]), _ref("Intent", intent.id))],
        )
    rival = list(brands)[int(rng.integers(len(brands)))]
    if rival != item["brand"]:
        w.sentence(["My neighbour prefers ", (brands[rival], "Brand", rival), ", but I am happy."])
    w.sentence([fillers[1]])


def write_documents(
    root: Path,
    onto: Ontology,
    cat: Catalogue,
    campaigns: pd.DataFrame,
    intent_ids: list[str],
    n: int,
    seed: int,
) -> dict[str, int]:
    """Write the documents and their hidden record under ``root``; return rows per file."""
    rng = np.random.default_rng([seed, 7])
    items = cat.items
    house = dict(zip(cat.house_brands["id"], cat.house_brands["name"], strict=True))
    facts = Facts(
        onto, {b.id: b.name for b in onto.brands.values()} | house, sorted(onto.leaves()), serves_map(onto)
    )
    with_needs = sorted({r.head for r in onto.relations_of("NEEDS")})
    rest = max(n - len(campaigns), 0)
    n_guide = min(len(with_needs), rest // 4)
    n_desc = min(len(items), rest // 2)
    n_rev = max(rest - n_guide - n_desc, 0)
    docs: list[dict[str, Any]] = []
    mentions: list[dict[str, Any]] = []
    statements: list[dict[str, Any]] = []
    rows = cast(list[dict[str, Any]], items.to_dict("records"))

    def add(w: Writer, title: str, domain: str, item: str) -> None:
        docs.append({"id": w.doc, "title": title, "text": w.text, "domain": domain, "item": item})
        mentions.extend(w.mentions)
        statements.extend(w.statements)

    for k, index in enumerate(sorted(rng.choice(len(items), size=n_desc, replace=False))):
        row = rows[int(index)]
        w = Writer(f"desc_{k:06d}", rng)
        _description(w, facts, row)
        add(w, str(row["title"]), str(row["domain"]), str(row["id"]))
    for camp in campaigns.to_dict("records"):
        w = Writer(f"brief_{camp['id']}", rng)
        opening = "This campaign reaches people who are going through "
        _intent_page(w, facts, intent_ids[int(camp["intents"][0])], f"Brief: {camp['name']}.", opening)
        add(w, f"Brief: {camp['name']}", str(camp["domain"]), "")
    for k in sorted(rng.choice(len(with_needs), size=n_guide, replace=False)):
        intent = onto.intents[with_needs[int(k)]]
        w = Writer(f"guide_{intent.id}", rng)
        _intent_page(
            w, facts, intent.id, f"Guide: {intent.name.capitalize()}.", "This page is for people facing "
        )
        add(w, f"Guide: {intent.name}", "", "")
    for k, index in enumerate(rng.choice(len(items), size=n_rev, replace=True)):
        row = rows[int(index)]
        w = Writer(f"review_{k:06d}", rng)
        _review(w, facts, row)
        add(w, f"Review of {row['title']}", str(row["domain"]), str(row["id"]))
    (root / "visible/documents").mkdir(parents=True, exist_ok=True)
    (root / "hidden/documents").mkdir(parents=True, exist_ok=True)
    with (root / "visible/documents/documents.jsonl").open("w") as out:
        for doc in docs:
            out.write(json.dumps(doc, sort_keys=True) + "\n")
    pd.DataFrame(statements).to_parquet(root / "hidden/documents/statements.parquet", index=False)
    pd.DataFrame(mentions).to_parquet(root / "hidden/documents/mentions.parquet", index=False)
    return {
        "visible/documents/documents.jsonl": len(docs),
        "hidden/documents/statements.parquet": len(statements),
        "hidden/documents/mentions.parquet": len(mentions),
    }
