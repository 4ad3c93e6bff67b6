"""The ground-truth marketing ontology: curated, versioned knowledge the simulated world is built on.

The knowledge lives as data in ``loaders/world/ontology/`` (one JSON list per file, one entry per
line so diffs stay readable) and is loaded, validated and indexed here.

Files
- ``VERSION``: the ontology version (a string, ``1`` today); bump it when the knowledge changes.
- ``domains.json``: ``{"id", "name", "description", "cold_start"}``, the business domains; the
  cold-start domain (``health``) is the sparse one.
- ``categories.json``: ``{"id": "cat_*", "name", "parent", "domain", "kind"}``, a tree (``parent``
  is ``null`` for roots) of at least three levels; ``kind`` is one of :data:`KINDS`.
  ``SUBCATEGORY_OF`` edges (child -> parent, weight 1) are derived from ``parent``, never listed.
- ``intents.json``: ``{"id": "int_*", "name", "description", "group", "prevalence",
  "duration_days"}``; ``prevalence`` in (0, 1] is the relative share of users who ever have the
  intent, ``duration_days`` the typical length of the need, ``group`` one of :data:`GROUPS`.
- ``relations.json``: ``{"head", "type", "tail", "weight"}`` with ``type`` one of :data:`REL_TYPES`
  and ``weight`` in (0, 1]. Endpoint labels follow from id prefixes (``int_`` Intent, ``cat_``
  Category, ``brand_`` Brand) and must be a pair ``graph.schema.SCHEMA`` allows; the relations'
  natural-language descriptions live in the schema. ``CO_OCCURS_WITH`` is symmetric and listed once
  with ``head < tail``; ``PRECEDES`` has no cycles; every intent has 3-10 ``NEEDS``.
- ``brands.json``: ``{"id": "brand_*", "name", "categories", "tier"}``, fictional brands with the
  (root or mid-level) categories they sell in and a price tier in :data:`TIERS`.
- ``vocabulary.json``: ``{"adjectives": {root_id: [...]}, "materials_or_features": {root_id: [...]},
  "query_templates": [...]}``, words for item titles and search queries; templates use the slots
  ``{category}``, ``{brand}``, ``{intent}`` and ``{adjective}``.

:func:`load_ontology` raises :class:`graph.errors.InputError` naming the file, the entry index and
the problem for anything that breaks these rules.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from graph.errors import InputError, SchemaError
from graph.schema import SCHEMA

DEFAULT_DIR = Path(__file__).parent / "ontology"
FILES = (
    "domains.json",
    "categories.json",
    "intents.json",
    "relations.json",
    "brands.json",
    "vocabulary.json",
)
KINDS = frozenset({"product", "service", "mini_app", "financial_product", "travel_product"})
GROUPS = frozenset(
    {"life_event", "seasonal", "hobby", "household", "financial", "health", "travel", "work_study"}
)
TIERS = frozenset({"budget", "mid", "premium"})
REL_TYPES = frozenset({"NEEDS", "CO_OCCURS_WITH", "PRECEDES", "SERVES"})
PREFIX_LABEL = {"int_": "Intent", "cat_": "Category", "brand_": "Brand"}
SUBCATEGORY_OF = "SUBCATEGORY_OF"


@dataclass(frozen=True)
class Minimums:
    """Sizes the shipped ontology must reach; tests of tiny ontologies lower them."""

    intents: int = 150
    categories: int = 300
    levels: int = 3
    needs_per_intent: int = 3
    max_needs_per_intent: int = 10


SHIPPED = Minimums()


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    description: str
    cold_start: bool


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    parent: str | None
    domain: str
    kind: str
    level: int  # 0 = root, computed from the parent chain


@dataclass(frozen=True)
class Intent:
    id: str
    name: str
    description: str
    group: str
    prevalence: float
    duration_days: int


@dataclass(frozen=True)
class Brand:
    id: str
    name: str
    categories: tuple[str, ...]
    tier: str


@dataclass(frozen=True)
class Relation:
    head: str
    type: str
    tail: str
    weight: float


@dataclass(frozen=True)
class Ontology:
    """The loaded ontology with tree and relation look-ups (build it with :func:`load_ontology`)."""

    domains: dict[str, Domain]
    categories: dict[str, Category]
    intents: dict[str, Intent]
    brands: dict[str, Brand]
    relations: tuple[Relation, ...]  # as listed in relations.json (SUBCATEGORY_OF excluded)
    vocabulary: dict[str, Any]
    version: str
    digest: str = field(repr=False)

    @functools.cached_property
    def _children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {c: [] for c in self.categories}
        for cat in self.categories.values():
            if cat.parent is not None:
                kids[cat.parent].append(cat.id)
        return kids

    def children(self, cat_id: str) -> list[str]:
        """Direct subcategories of a category, in file order."""
        return list(self._children[self._category(cat_id)])

    def ancestors(self, cat_id: str) -> list[str]:
        """Parent, grandparent, ... up to the root (nearest first; the category itself excluded)."""
        out, parent = [], self.categories[self._category(cat_id)].parent
        while parent is not None:
            out.append(parent)
            parent = self.categories[parent].parent
        return out

    def subtree(self, cat_id: str) -> list[str]:
        """The category and all its descendants, depth first."""
        out, stack = [], [self._category(cat_id)]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self._children[node]))
        return out

    def leaves(self, under: str | None = None) -> list[str]:
        """Leaf categories of the whole tree, or of the subtree under ``under`` (itself if a leaf)."""
        pool = self.categories if under is None else self.subtree(under)
        return [c for c in pool if not self._children[c]]

    def needs(self, intent_id: str) -> dict[str, float]:
        """NEEDS of an intent expanded to leaves.

        A NEEDS edge of weight w to a category with n leaves gives each leaf w / n; a leaf reached
        by several edges gets the sum.
        """
        if intent_id not in self.intents:
            raise InputError(f"unknown intent {intent_id!r}; intent ids start with 'int_'")
        out: dict[str, float] = {}
        for rel in self._by_type.get("NEEDS", []):
            if rel.head != intent_id:
                continue
            leaves = self.leaves(rel.tail)
            for leaf in leaves:
                out[leaf] = out.get(leaf, 0.0) + rel.weight / len(leaves)
        return out

    @functools.cached_property
    def _by_type(self) -> dict[str, list[Relation]]:
        out: dict[str, list[Relation]] = {}
        for rel in self.relations:
            out.setdefault(rel.type, []).append(rel)
        out[SUBCATEGORY_OF] = [
            Relation(c.id, SUBCATEGORY_OF, c.parent, 1.0)
            for c in self.categories.values()
            if c.parent is not None
        ]
        return out

    def relations_of(self, rel_type: str) -> list[Relation]:
        """Relations of one type; ``SUBCATEGORY_OF`` gives the edges derived from the tree."""
        if rel_type not in REL_TYPES | {SUBCATEGORY_OF}:
            allowed = ", ".join(sorted(REL_TYPES | {SUBCATEGORY_OF}))
            raise InputError(f"the ontology has no relation type {rel_type!r}; it has: {allowed}")
        return list(self._by_type.get(rel_type, []))

    def triples(self) -> list[tuple[str, str, str, float]]:
        """Every ground-truth fact as (head, type, tail, weight), SUBCATEGORY_OF edges included."""
        rels = [*self.relations, *self._by_type[SUBCATEGORY_OF]]
        return [(r.head, r.type, r.tail, r.weight) for r in rels]

    def content_hash(self) -> str:
        """sha256 over the canonical JSON of VERSION and every data file (formatting ignored)."""
        return self.digest

    def _category(self, cat_id: str) -> str:
        if cat_id not in self.categories:
            raise InputError(f"unknown category {cat_id!r}; category ids start with 'cat_'")
        return cat_id


def load_ontology(directory: Path = DEFAULT_DIR, minimums: Minimums = SHIPPED) -> Ontology:
    """Load and validate the ontology in ``directory`` (cached while the files are unchanged)."""
    texts = []
    for name in ("VERSION", *FILES):
        path = Path(directory) / name
        try:
            texts.append((name, path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise InputError(f"cannot read ontology file {path}: {exc.strerror or exc}") from None
    return _build(str(directory), tuple(texts), minimums)


@functools.lru_cache(maxsize=8)
def _build(directory: str, texts: tuple[tuple[str, str], ...], minimums: Minimums) -> Ontology:
    raw: dict[str, Any] = {"VERSION": texts[0][1].strip()}
    for name, text in texts[1:]:
        try:
            raw[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{directory}/{name} is not valid JSON: {exc}") from None
    if not raw["VERSION"]:
        raise InputError(f"{directory}/VERSION is empty; write the ontology version (e.g. 1) in it")
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    onto = Ontology(
        domains={d.id: d for d in _entries(raw, "domains.json", _domain)},
        categories=_categories(raw, minimums),
        intents={i.id: i for i in _entries(raw, "intents.json", _intent)},
        brands={b.id: b for b in _entries(raw, "brands.json", _brand)},
        relations=tuple(_entries(raw, "relations.json", _relation)),
        vocabulary=_vocabulary(raw["vocabulary.json"]),
        version=raw["VERSION"],
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )
    _check_references(onto, raw)
    _check_relations(onto, minimums)
    _check_counts(onto, minimums)
    return onto


# --- parsing one entry ----------------------------------------------------------------------------


class _EntryError(Exception):
    """A problem with one entry; :func:`_entries` adds the file and index."""


def _field(row: dict[str, Any], key: str, types: type | tuple[type, ...]) -> Any:
    if key not in row:
        raise _EntryError(f"missing field {key!r}")
    value = row[key]
    bad_bool = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    if bad_bool or not isinstance(value, types):
        raise _EntryError(f"field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _prefixed(row: dict[str, Any], prefix: str) -> str:
    value: str = _field(row, "id", str)
    if not value.startswith(prefix):
        raise _EntryError(f"id {value!r} must start with {prefix!r}")
    return value


def _unit_weight(value: float, what: str) -> float:
    if not 0.0 < value <= 1.0:
        raise _EntryError(f"{what} {value} is outside (0, 1]")
    return float(value)


def _one_of(value: str, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise _EntryError(f"{what} {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _domain(row: dict[str, Any]) -> Domain:
    return Domain(
        _field(row, "id", str),
        _field(row, "name", str),
        _field(row, "description", str),
        _field(row, "cold_start", bool),
    )


def _intent(row: dict[str, Any]) -> Intent:
    days = _field(row, "duration_days", int)
    if days < 1:
        raise _EntryError(f"duration_days {days} must be at least 1")
    return Intent(
        _prefixed(row, "int_"),
        _field(row, "name", str),
        _field(row, "description", str),
        _one_of(_field(row, "group", str), GROUPS, "group"),
        _unit_weight(_field(row, "prevalence", (int, float)), "prevalence"),
        days,
    )


def _brand(row: dict[str, Any]) -> Brand:
    cats = _field(row, "categories", list)
    if not cats or not all(isinstance(c, str) for c in cats):
        raise _EntryError("categories must be a non-empty list of category ids")
    return Brand(
        _prefixed(row, "brand_"),
        _field(row, "name", str),
        tuple(cats),
        _one_of(_field(row, "tier", str), TIERS, "tier"),
    )


def _relation(row: dict[str, Any]) -> Relation:
    head, tail = _field(row, "head", str), _field(row, "tail", str)
    rel_type = _field(row, "type", str)
    if rel_type == SUBCATEGORY_OF:
        raise _EntryError("SUBCATEGORY_OF is derived from categories.json 'parent'; do not list it")
    _one_of(rel_type, REL_TYPES, "relation type")
    labels = [_label(node) for node in (head, tail)]
    try:
        SCHEMA.endpoints(rel_type, labels[0], labels[1])
    except SchemaError as exc:
        raise _EntryError(str(exc)) from None
    return Relation(head, rel_type, tail, _unit_weight(_field(row, "weight", (int, float)), "weight"))


def _label(node_id: str) -> str:
    for prefix, label in PREFIX_LABEL.items():
        if node_id.startswith(prefix):
            return label
    raise _EntryError(f"id {node_id!r} has no known prefix ({', '.join(PREFIX_LABEL)})")


def _entries(raw: dict[str, Any], name: str, parse: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """Parse every entry of a list file, rejecting duplicate ids and names."""
    rows = raw[name]
    if not isinstance(rows, list):
        raise InputError(f"{name} must hold a JSON list of objects")
    out: list[Any] = []
    seen: dict[tuple[str, str], int] = {}
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise _EntryError("is not a JSON object")
            entry = parse(row)
        except _EntryError as exc:
            raise InputError(f"{name} entry {index}: {exc}") from None
        keys = [("id", entry.id), ("name", entry.name)] if hasattr(entry, "id") else []
        for key, value in keys:
            if (key, value) in seen:
                raise InputError(
                    f"{name} entry {index}: duplicate {key} {value!r} (first at entry {seen[key, value]})"
                )
            seen[key, value] = index
        out.append(entry)
    return out


# --- whole-file checks ----------------------------------------------------------------------------


def _categories(raw: dict[str, Any], minimums: Minimums) -> dict[str, Category]:
    """Categories with their level; rejects unknown parents, cycles and too shallow trees."""

    def parse(row: dict[str, Any]) -> Category:
        parent = row.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise _EntryError("parent must be a category id or null")
        kind = _one_of(_field(row, "kind", str), KINDS, "kind")
        return Category(
            _prefixed(row, "cat_"), _field(row, "name", str), parent, _field(row, "domain", str), kind, 0
        )

    cats = {c.id: c for c in _entries(raw, "categories.json", parse)}
    index = {c: i for i, c in enumerate(cats)}
    levels: dict[str, int] = {}
    for cat in cats.values():
        chain, node = [], cat.id
        while node not in levels:
            if node in chain:
                raise InputError(f"categories.json entry {index[node]}: {node!r} is in a parent cycle")
            chain.append(node)
            parent = cats[node].parent
            if parent is None:
                levels[node] = 0
                chain.pop()
                break
            if parent not in cats:
                raise InputError(f"categories.json entry {index[node]}: unknown parent {parent!r}")
            node = parent
        for depth, node_id in enumerate(reversed(chain), start=1):
            levels[node_id] = levels[node] + depth
    depth = 1 + max(levels.values(), default=-1)
    if depth < minimums.levels:
        raise InputError(f"categories.json: the tree has {depth} levels; at least {minimums.levels} needed")
    return {c: replace(cat, level=levels[c]) for c, cat in cats.items()}


def _vocabulary(vocab: Any) -> dict[str, Any]:
    if not isinstance(vocab, dict):
        raise InputError("vocabulary.json must hold a JSON object")
    for key in ("adjectives", "materials_or_features"):
        if not isinstance(vocab.get(key), dict):
            raise InputError(f"vocabulary.json: {key!r} must map root category ids to word lists")
    templates = vocab.get("query_templates")
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise InputError("vocabulary.json: 'query_templates' must be a list of strings")
    return vocab


def _check_references(onto: Ontology, raw: dict[str, Any]) -> None:
    """Every domain, category and intent an entry names must exist."""
    for i, cat in enumerate(onto.categories.values()):
        if cat.domain not in onto.domains:
            raise InputError(f"categories.json entry {i}: unknown domain {cat.domain!r}")
    roots = {c.domain for c in onto.categories.values() if c.parent is None}
    for i, dom in enumerate(onto.domains.values()):
        if dom.id not in roots:
            raise InputError(f"domains.json entry {i}: domain {dom.id!r} has no root category")
    for i, brand in enumerate(onto.brands.values()):
        for cat_id in brand.categories:
            if cat_id not in onto.categories:
                raise InputError(f"brands.json entry {i}: unknown category {cat_id!r}")
    known = onto.categories.keys() | onto.intents.keys() | onto.brands.keys()
    for i, rel in enumerate(onto.relations):
        for node in (rel.head, rel.tail):
            if node not in known:
                raise InputError(f"relations.json entry {i}: unknown {_label(node).lower()} {node!r}")
    for key in ("adjectives", "materials_or_features"):
        for cat_id in raw["vocabulary.json"][key]:
            if cat_id not in onto.categories:
                raise InputError(f"vocabulary.json: {key} names unknown category {cat_id!r}")


def _check_relations(onto: Ontology, minimums: Minimums) -> None:
    """No duplicate facts, CO_OCCURS_WITH once per pair, PRECEDES acyclic, NEEDS per intent in range."""
    seen: dict[tuple[str, str, str], int] = {}
    for i, rel in enumerate(onto.relations):
        key = (rel.head, rel.type, rel.tail)
        if key in seen:
            raise InputError(f"relations.json entry {i}: duplicate of entry {seen[key]}")
        seen[key] = i
        if rel.type == "CO_OCCURS_WITH" and rel.head >= rel.tail:
            raise InputError(f"relations.json entry {i}: CO_OCCURS_WITH is listed once with head < tail")
        if rel.head == rel.tail:
            raise InputError(f"relations.json entry {i}: {rel.type} from {rel.head!r} to itself")
    _check_precedes_acyclic(onto)
    counts = dict.fromkeys(onto.intents, 0)
    for rel in onto.relations:
        if rel.type == "NEEDS":
            counts[rel.head] += 1
    for i, (intent_id, n) in enumerate(counts.items()):
        if not minimums.needs_per_intent <= n <= minimums.max_needs_per_intent:
            raise InputError(
                f"intents.json entry {i}: {intent_id!r} has {n} NEEDS relations; "
                f"give it {minimums.needs_per_intent}-{minimums.max_needs_per_intent} in relations.json"
            )


def _check_precedes_acyclic(onto: Ontology) -> None:
    succ: dict[str, list[tuple[int, str]]] = {}
    for i, rel in enumerate(onto.relations):
        if rel.type == "PRECEDES":
            succ.setdefault(rel.head, []).append((i, rel.tail))
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str) -> None:
        state[node] = 1
        for i, nxt in succ.get(node, []):
            if state.get(nxt) == 1:
                raise InputError(f"relations.json entry {i}: PRECEDES {node!r} -> {nxt!r} closes a cycle")
            if nxt not in state:
                visit(nxt)
        state[node] = 2

    for node in sorted(succ):
        if node not in state:
            visit(node)


def _check_counts(onto: Ontology, minimums: Minimums) -> None:
    for name, have, need in (
        ("intents.json", len(onto.intents), minimums.intents),
        ("categories.json", len(onto.categories), minimums.categories),
    ):
        if have < need:
            raise InputError(f"{name}: {have} entries; the ontology needs at least {need}")
