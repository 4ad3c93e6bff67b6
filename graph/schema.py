"""The MoKG schema, declared once, as data.

Node labels, relation types (a closed, versioned set), their properties and keys live here and
nowhere else. Backends turn this into node/rel tables (LadybugDB) or uniqueness constraints and
indexes (Neo4j). Label and relation-type names reach Cypher text only after :meth:`Schema.label`
or :meth:`Schema.rel` has checked them; values always travel as parameters.

Conventions
- Every node has the key ``id`` (string, unique per label) plus ``name``, ``source``, ``run_id``
  (the run that created it) and ``created_at``.
- Every edge is unique on (head, type, tail) and carries ``confidence``, ``source``, ``run_id``
  (the run that created it) and ``created_at``; re-writing an edge updates its other properties.
- ``mined=True`` marks the relations PAIR's adaptive relation filtering may choose from; each has
  a natural-language description that the mining prompts quote, and carries the aggregation's
  parts and provenance (``vote``, ``relatedness``, ``evidence``; schema v2), and for facts mined
  from text the chunk spans that state them (``spans``; schema v3).
- Documents (schema v3): a ``Document`` has ``Chunk`` s (``HAS_CHUNK``), a chunk ``MENTIONS`` the
  entities linked in it (with the character spans), and a document ``DESCRIBES`` the item it is
  about.
- System labels (``Run``, ``Change``, ``DeclaredRelation``, ``TableHash``) are the store's own
  bookkeeping, never part of the MoKG: a ``Change`` row holds the before-image of the properties a
  run changed on a row another run created, so deleting the run can put them back (schema v4, with
  the writer's host and pid on ``Run``); a ``TableHash`` row the content hash of a table file an
  ingest loaded, written with its rows, so loading the file again unchanged is skipped (schema v8).
- External knowledge graphs (schema v5): an ``Entity`` is a node of a KG a user brings (a Freebase
  topic), ``SAME_AS`` links an item to it, and the KG's own relation types are *declared* in a
  store (:meth:`Schema.extend`; one ``DeclaredRelation`` row per endpoint pair, so a store opened by
  a fresh process knows them: ``store.schema``). Declared types are ``external``: never mined, never
  part of the closed set PAIR filters over. ``User`` and ``Item`` carry a dataset's own fields as a
  JSON object (``attributes``), ``INTERACTED`` the ``rating`` as given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from graph.errors import SchemaError

SCHEMA_VERSION = "8"  # v2: mined-edge provenance; v3: documents, spans; v4: Change, Run writer;
# v5: Entity, SAME_AS, declared (external) relation types, attributes, INTERACTED.rating;
# v6: Representation (a model's vectors of nodes, written back by the foundation model);
# v7: Thought's parts, provenance, status and vector (TiM long-term memory);
# v8: TableHash (the content hash of each table file a run loaded: re-ingesting it is a no-op)
KEY = "id"
DECLARED = "DeclaredRelation"  # the system label that records a store's declared relation types


class PropType(StrEnum):
    """Property types, named as LadybugDB names them."""

    STRING = "STRING"
    INT64 = "INT64"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    TIMESTAMP = "TIMESTAMP"


@dataclass(frozen=True)
class Prop:
    name: str
    type: PropType
    description: str = ""


@dataclass(frozen=True)
class NodeLabel:
    name: str
    description: str
    extra: tuple[Prop, ...] = ()
    system: bool = False

    @property
    def props(self) -> tuple[Prop, ...]:
        return NODE_COMMON + self.extra

    def prop(self, name: str) -> Prop:
        for p in self.props:
            if p.name == name:
                return p
        raise SchemaError(
            f"label {self.name} has no property {name!r}; "
            f"its properties are: {', '.join(p.name for p in self.props)}"
        )


@dataclass(frozen=True)
class RelType:
    name: str
    description: str
    endpoints: tuple[tuple[str, str], ...]
    extra: tuple[Prop, ...] = ()
    mined: bool = False
    external: bool = False  # declared in a store for a KG a user brought (see Schema.extend)
    origin: str = ""  # an external type's name in its source, e.g. film.film.actor

    @property
    def props(self) -> tuple[Prop, ...]:
        return EDGE_COMMON + (MINED_PROPS if self.mined else ()) + self.extra

    def prop(self, name: str) -> Prop:
        for p in self.props:
            if p.name == name:
                return p
        raise SchemaError(
            f"relation {self.name} has no property {name!r}; "
            f"its properties are: {', '.join(p.name for p in self.props)}"
        )


NODE_COMMON: tuple[Prop, ...] = (
    Prop(KEY, PropType.STRING, "unique key within the label"),
    Prop("name", PropType.STRING, "human-readable name"),
    Prop("source", PropType.STRING, "dataset or mining run that produced the node"),
    Prop("run_id", PropType.STRING, "the run that created the node"),
    Prop("created_at", PropType.TIMESTAMP, "when the node was first written (UTC)"),
)
EDGE_COMMON: tuple[Prop, ...] = (
    Prop("confidence", PropType.DOUBLE, "belief in the fact, in [0, 1]"),
    Prop("source", PropType.STRING, "dataset or mining run that produced the edge"),
    Prop("run_id", PropType.STRING, "the run that created the edge"),
    Prop("created_at", PropType.TIMESTAMP, "when the edge was first written (UTC)"),
)
MINED_PROPS: tuple[Prop, ...] = (
    Prop("vote", PropType.DOUBLE, "self-consistency: share of LLM samples that gave the fact"),
    Prop("relatedness", PropType.DOUBLE, "cosine of MiniLM(head + relation meaning) and MiniLM(tail)"),
    Prop("evidence", PropType.STRING, "JSON provenance: prompt and response ids, samples, rounds"),
    Prop(
        "spans",
        PropType.STRING,
        "JSON list of the text that states a fact mined from documents: [chunk id, start, end] "
        "(character offsets in the chunk's text)",
    ),
)
EDGE_SYSTEM_PROPS = frozenset({"run_id", "created_at"})
NODE_SYSTEM_PROPS = frozenset({"run_id", "created_at"})

_S, _I, _D, _B, _T = (
    PropType.STRING,
    PropType.INT64,
    PropType.DOUBLE,
    PropType.BOOL,
    PropType.TIMESTAMP,
)

_ENTITY = ("Intent", "Item", "Category", "Brand", "Concept")
_ATTRIBUTES = Prop(
    "attributes",
    _S,
    "JSON object of a dataset's own fields, typed as its file declared them (numbers, text, lists), "
    "e.g. a RecBole .user file's age, gender, occupation",
)

NODE_LABELS: tuple[NodeLabel, ...] = (
    NodeLabel("User", "a person using one or more business domains", (_ATTRIBUTES,)),
    NodeLabel(
        "Intent",
        "a marketing need or life event, e.g. 'wedding preparation'",
        (Prop("description", _S),),
    ),
    NodeLabel(
        "Item",
        "a product, service or mini-app",
        (
            Prop("kind", _S, "product|service|mini_app"),
            Prop("title", _S),
            Prop("description", _S),
            Prop("price", _D),
            _ATTRIBUTES,
        ),
    ),
    NodeLabel("Category", "a node of the category tree", (Prop("level", _I, "0 = root"),)),
    NodeLabel("Brand", "a brand or merchant"),
    NodeLabel(
        "Campaign",
        "a marketing campaign aimed at intents or items",
        (Prop("description", _S), Prop("budget", _I, "audience size the campaign pays for")),
    ),
    NodeLabel(
        "Domain",
        "a business scenario, e.g. e-commerce or travel",
        (Prop("description", _S), Prop("cold_start", _B)),
    ),
    NodeLabel("Concept", "a mined entity not yet typed", (Prop("description", _S),)),
    NodeLabel(
        "Entity",
        "an entity of an external knowledge graph a user brought (e.g. a Freebase topic)",
        (Prop("external_id", _S, "the entity's id in its knowledge graph"), Prop("description", _S)),
    ),
    NodeLabel("Query", "a search query", (Prop("text", _S),)),
    NodeLabel(
        "Thought",
        "a TiM memory: a head-relation-tail sentence an assistant stored about a user (schema v7)",
        (
            Prop("text", _S),
            Prop("user", _S, "the id of the user whose conversation it came from"),
            Prop("head", _S),
            Prop("relation", _S),
            Prop("tail", _S),
            Prop("session", _S, "the conversation session it was post-thought in"),
            Prop("at", _S, "ISO time of the turn it came from"),
            Prop("turns", _S, "JSON list of the turn ids it came from (SESSION#INDEX)"),
            Prop("status", _S, "active, retired (forgotten) or merged"),
            Prop("retired_at", _S, "ISO time it was retired or merged (never deleted silently)"),
            Prop("retired_by", _S, "the id of the thought that contradicted or merged it"),
            Prop("dim", _I),
            Prop("vector", _S, "float32 little-endian, base64 (unit length)"),
        ),
    ),
    NodeLabel(
        "Representation",
        "a model's vector of a node (schema v6; id = MODEL_HASH:LABEL:NODE_ID)",
        (
            Prop("of_label", _S, "the label of the node it represents"),
            Prop("of_id", _S, "the id of the node it represents"),
            Prop("domain", _S, "the domain the vector was computed for"),
            Prop("model", _S, "the model that computed it"),
            Prop("model_hash", _S, "the hash of the model's config and weights"),
            Prop("graph_version", _S, "the store version the model was trained on"),
            Prop("dim", _I),
            Prop("vector", _S, "float32 little-endian, base64"),
        ),
    ),
    NodeLabel(
        "Document",
        "a text the KG was mined from: a product description, campaign brief, review, FAQ page",
        (
            Prop("text", _S),
            Prop("url", _S),
            Prop("domain", _S, "business domain, if the source gave one"),
            Prop("sha256", _S, "hash of the text (a changed text is a new version)"),
        ),
    ),
    NodeLabel(
        "Chunk",
        "a passage of a document, sentence-aligned (the unit mined and cited)",
        (
            Prop("text", _S),
            Prop("document", _S, "id of the document"),
            Prop("position", _I, "0-based index of the chunk in its document"),
            Prop("char_start", _I, "character offset of the chunk in the document's text"),
            Prop("char_end", _I, "character offset one past the chunk's end"),
        ),
    ),
    NodeLabel(
        "Run",
        "a write job; every node and edge belongs to one (system label)",
        (
            Prop("kind", _S),
            Prop("status", _S, "running|done|failed (listed as interrupted when its writer is gone)"),
            Prop("seq", _I),
            Prop("started_at", _T),
            Prop("finished_at", _T),
            Prop("note", _S),
            Prop("host", _S, "the machine of the process that writes the run"),
            Prop("pid", _I, "the process that writes the run"),
        ),
        system=True,
    ),
    NodeLabel(
        "Change",
        "the before-image of a row a run changed but did not create (system label)",
        (
            Prop("target", _S, "the node label, or HEAD-REL-TAIL of the edge"),
            Prop("key", _S, "JSON key of the changed row: the node id, or [head, tail]"),
            Prop("before", _S, "JSON object: each changed property's value before the run"),
            Prop("after", _S, "JSON object: each changed property's value the run wrote"),
        ),
        system=True,
    ),
    NodeLabel(
        "TableHash",
        "the content hash of a table file a run loaded, so loading it again unchanged is skipped "
        "(system label; schema v8; id = RUN_ID:TARGET)",
        (
            Prop("target", _S, "the node label, or HEAD-REL-TAIL of the edge (as Change.target)"),
            Prop("sha256", _S, "hash of the file's bytes, the table's name and how it was loaded"),
            Prop("rows", _I),
            Prop("file", _S, "the path the table was read from"),
        ),
        system=True,
    ),
    NodeLabel(
        DECLARED,
        "one endpoint pair of a relation type declared in this store (system label)",
        (
            Prop("relation", _S, "the declared type's name, a safe identifier"),
            Prop("from_label", _S),
            Prop("to_label", _S),
            Prop("origin", _S, "the type's name in its source, e.g. film.film.actor"),
            Prop("description", _S),
        ),
        system=True,
    ),
)

REL_TYPES: tuple[RelType, ...] = (
    RelType(
        "INTERACTED",
        "the user clicked, bought or used the item",
        (("User", "Item"),),
        (
            Prop("kind", _S),
            Prop("ts", _T),
            Prop("domain", _S),
            Prop("count", _I),
            Prop("rating", _D, "the rating as the dataset gave it, on its own scale"),
        ),
    ),
    RelType("HAS_INTENT", "the user currently has the intent", (("User", "Intent"),)),
    RelType("ACTIVE_IN", "the user acts in the business domain", (("User", "Domain"),)),
    RelType(
        "IN_DOMAIN",
        "the item or campaign belongs to the business domain",
        (("Item", "Domain"), ("Campaign", "Domain")),
    ),
    RelType("SEARCHED", "the user issued the search query", (("User", "Query"),), (Prop("ts", _T),)),
    RelType("CLICKED", "a result of the query that was clicked", (("Query", "Item"),)),
    RelType(
        "NEEDS",
        "people with this intent typically need things from the tail "
        "(e.g. wedding preparation needs wedding dresses)",
        (("Intent", "Category"), ("Intent", "Item"), ("Intent", "Concept")),
        mined=True,
    ),
    RelType(
        "CO_OCCURS_WITH",
        "the two intents often arise for the same person at the same time "
        "(e.g. moving house co-occurs with home furnishing)",
        (("Intent", "Intent"),),
        mined=True,
    ),
    RelType(
        "PRECEDES",
        "the head intent typically comes shortly before the tail intent "
        "(e.g. wedding preparation precedes honeymoon travel)",
        (("Intent", "Intent"),),
        mined=True,
    ),
    RelType(
        "SERVES",
        "the head item, category or concept satisfies the tail intent (e.g. strollers serve newborn care)",
        (("Item", "Intent"), ("Category", "Intent"), ("Concept", "Intent")),
        mined=True,
    ),
    RelType(
        "SUBCATEGORY_OF",
        "the head category is a narrower kind of the tail category "
        "(e.g. running shoes is a subcategory of sports shoes)",
        (("Category", "Category"),),
        mined=True,
    ),
    RelType(
        "BELONGS_TO",
        "the item or concept is an instance of the category",
        (("Item", "Category"), ("Concept", "Category")),
        mined=True,
    ),
    RelType("MADE_BY", "the item is made or sold by the brand", (("Item", "Brand"),), mined=True),
    RelType(
        "RELATED_TO",
        "a weaker association between two entities that no other relation captures",
        (("Concept", "Concept"), ("Intent", "Concept"), ("Concept", "Category")),
        mined=True,
    ),
    RelType(
        "TARGETS",
        "the campaign is aimed at the intent, item or category",
        (("Campaign", "Intent"), ("Campaign", "Item"), ("Campaign", "Category")),
    ),
    RelType(
        "MENTIONS",
        "the memory thought or the document chunk mentions the entity",
        tuple(("Thought", label) for label in ("User", *_ENTITY))
        + tuple(("Chunk", label) for label in _ENTITY),
        (
            Prop("spans", _S, "JSON list of [start, end] character offsets in the chunk's text"),
            Prop("surface", _S, "the text as written (first occurrence)"),
        ),
    ),
    RelType("HAS_CHUNK", "the document is made of the chunk", (("Document", "Chunk"),)),
    RelType(
        "DESCRIBES", "the document is about the item (its description or a review)", (("Document", "Item"),)
    ),
    RelType(
        "SAME_AS",
        "the item is this entity of an external knowledge graph (e.g. a RecBole .link row)",
        (("Item", "Entity"),),
    ),
)


SAFE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,99}")
"""A declared relation type's name: upper-case letters, digits and '_', a letter first, ≤ 100 long."""
_KEYWORDS = """ACYCLIC ADD ALL AND ANY AS ASC ASCENDING ASSERT BY CALL CASE CAST COLUMN CONSTRAINT CONTAINS
    COUNT CREATE CSV DBTYPE DEFAULT DELETE DESC DESCENDING DETACH DISTINCT DO DROP ELSE END ENDS EXISTS
    FALSE FOR FOREACH FROM GLOB GROUP HEADERS IN INDEX INSTALL IS JOIN KEY LIMIT LOAD MACRO MANDATORY
    MATCH MERGE MULTI_JOIN NODE NONE NOT NULL OF ON ONLY OPTIONAL OR ORDER PRIMARY PROFILE REL REMOVE
    REQUIRE RETURN SCALAR SCAN SET SHORTEST SINGLE SKIP START STARTS TABLE THEN TO TRAIL TRUE UNION
    UNIQUE UNWIND USING WHEN WHERE WITH WSHORTEST XOR YIELD"""
RESERVED = frozenset(_KEYWORDS.split())
"""Cypher keywords (Neo4j's and LadybugDB's) that cannot name a relation type."""


def check_relation_name(name: str) -> str:
    """``name`` if it may name a declared relation type, else a SchemaError (before any Cypher)."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        hint = f"; e.g. {relation_name(name)}" if isinstance(name, str) and _mappable(name) else ""
        raise SchemaError(
            f"relation type {str(name)[:120]!r} is not a safe identifier (upper-case letters, digits "
            f"and '_', a letter first, at most 100 characters){hint}"
        )
    if name in RESERVED:
        raise SchemaError(f"relation type {name!r} is a Cypher keyword; choose another name, e.g. {name}_REL")
    return name


def _mappable(origin: str) -> bool:
    return bool(re.search(r"[A-Za-z0-9]", origin)) and len(origin) <= 200


def relation_name(origin: str) -> str:
    """The safe type name of a relation named ``origin`` in its source, the same on every run:
    ``film.film.actor`` → ``FILM_FILM_ACTOR`` (runs of other characters become one '_'; a name
    starting with a digit gets ``R_``; a Cypher keyword gets ``_REL``)."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", origin).strip("_").upper()
    if not name or len(origin) > 200:
        raise SchemaError(f"relation {origin[:120]!r} has no letters or digits to name a type after")
    name = f"R_{name}" if name[0].isdigit() else name
    return f"{name}_REL" if name in RESERVED else name


def external_relation(
    name: str, endpoints: Iterable[tuple[str, str]], *, origin: str = "", description: str = ""
) -> RelType:
    """A relation type to declare in a store (checked against a schema by :meth:`Schema.extend`)."""
    what = origin or name
    return RelType(
        check_relation_name(name),
        description or f"the relation {what} of an external knowledge graph",
        tuple(endpoints),
        external=True,
        origin=origin,
    )


@dataclass(frozen=True)
class Schema:
    """Lookup and validation over the declared labels and relation types.

    :data:`SCHEMA` is the MoKG's own (the same in every store); a store's schema
    (``store.schema``) is that one extended with the relation types declared in the store. Its
    ``version`` is the MoKG's (``5``) or, extended, ``5+ext.`` and a digest of the declarations.
    """

    version: str = SCHEMA_VERSION
    labels: dict[str, NodeLabel] = field(default_factory=lambda: {n.name: n for n in NODE_LABELS})
    rel_types: dict[str, RelType] = field(default_factory=lambda: {r.name: r for r in REL_TYPES})

    def label(self, name: str) -> NodeLabel:
        """The declared label, or a SchemaError listing the valid ones."""
        try:
            return self.labels[name]
        except (KeyError, TypeError):
            raise SchemaError(
                f"unknown node label {str(name)[:120]!r}; the MoKG schema (v{self.version}) has: "
                f"{', '.join(sorted(self.labels))}"
            ) from None

    def rel(self, name: str) -> RelType:
        """The declared relation type, or a SchemaError listing the valid ones."""
        try:
            return self.rel_types[name]
        except (KeyError, TypeError):
            raise SchemaError(
                f"unknown relation type {str(name)[:120]!r}; the MoKG schema (v{self.version}) has: "
                f"{', '.join(sorted(self.rel_types))}"
            ) from None

    def endpoints(self, rel_type: str, head: str | None = None, tail: str | None = None) -> tuple[str, str]:
        """Resolve the (head label, tail label) pair of a relation, checking it is declared."""
        rel = self.rel(rel_type)
        pairs = [
            (h, t) for h, t in rel.endpoints if (head is None or h == head) and (tail is None or t == tail)
        ]
        if len(pairs) == 1:
            return pairs[0]
        allowed = ", ".join(f"({h})-[:{rel.name}]->({t})" for h, t in rel.endpoints)
        if not pairs:
            raise SchemaError(
                f"{head or '?'} -[:{rel.name}]-> {tail or '?'} is not allowed by the schema; "
                f"allowed: {allowed}"
            )
        raise SchemaError(
            f"relation {rel.name} has several endpoint pairs ({allowed}); "
            "say which with head=... and tail=..."
        )

    def data_labels(self) -> list[str]:
        """Labels of the MoKG itself (system labels such as Run excluded)."""
        return [n for n, lab in self.labels.items() if not lab.system]

    def mined_relations(self) -> list[RelType]:
        """The closed relation set PAIR filters from (never a declared, external type)."""
        return [r for r in self.rel_types.values() if r.mined]

    def external_relations(self) -> list[RelType]:
        """The relation types declared in the store (a KG a user brought), in declaration order."""
        return [r for r in self.rel_types.values() if r.external]

    def extend(self, relations: Iterable[RelType]) -> Schema:
        """This schema with the external ``relations`` declared: a new type, or more endpoint
        pairs of one declared before. Refused (SchemaError, before any Cypher): an unsafe name, a
        name of the MoKG's own types or labels (in any case), two source names for one type, an
        endpoint that is not a MoKG data label."""
        rels = dict(self.rel_types)
        for rel in relations:
            rels[rel.name] = self._merged(rels, rel)
        if rels == self.rel_types:
            return self
        return Schema(_extended_version(self.version, rels.values()), self.labels, rels)

    def _merged(self, rels: dict[str, RelType], rel: RelType) -> RelType:
        check_relation_name(rel.name)
        if not rel.external or rel.mined or rel.extra:
            raise SchemaError(
                f"relation {rel.name}: only external types without extra properties are declared"
            )
        for head, tail in rel.endpoints:
            for label in (head, tail):
                if self.label(label).system:
                    raise SchemaError(f"relation {rel.name}: {label} is a system label, not part of the MoKG")
        prior = rels.get(rel.name)
        if prior is None:
            clash = [n for n in [*self.labels, *rels] if n.upper() == rel.name.upper()]
            if clash:
                raise SchemaError(f"relation type {rel.name} collides with {clash[0]} (names ignore case)")
            return rel
        if not prior.external:
            raise SchemaError(
                f"relation type {rel.name} is one of the MoKG's own; an external type needs another name"
            )
        if prior.origin and rel.origin and prior.origin != rel.origin:
            raise SchemaError(
                f"the relations {prior.origin!r} and {rel.origin!r} both map to the type {rel.name}: "
                "rename one in its source"
            )
        pairs = tuple(dict.fromkeys([*prior.endpoints, *rel.endpoints]))
        return replace(prior, endpoints=pairs, origin=prior.origin or rel.origin)


def _extended_version(version: str, rels: Iterable[RelType]) -> str:
    lines = sorted(f"{r.name}|{h}|{t}|{r.origin}" for r in rels if r.external for h, t in r.endpoints)
    if not lines:
        return version.split("+")[0]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:8]
    return f"{version.split('+')[0]}+ext.{digest}"


SCHEMA = Schema()
