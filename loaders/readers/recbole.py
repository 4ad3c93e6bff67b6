"""A RecBole dataset folder (atomic files) → users, items, categories, an external KG and its links.

``DIR/NAME.inter``, ``.user``, ``.item``, ``.kg``, ``.link`` with ``NAME`` the folder's name, as
RecBole lays out its 44 public datasets (e.g. ``recbole/dataset_example/ml-100k/``); any subset
that makes sense, except that a ``.kg`` needs its ``.link`` (the KG reaches the items only through
it). Columns are typed by the header (:mod:`loaders.readers.atomic`). What becomes what:

- ``.inter`` (``user_id``, ``item_id``; ``rating:float``, ``timestamp:float`` if present): one
  ``INTERACTED`` edge per (user, item): ``rating`` as given, ``ts`` from unix seconds, ``kind``
  ``rating`` (or ``interaction`` without a rating), ``confidence`` 1.0 (the interaction was
  observed); repeated pairs collapse to the latest row with ``count`` rows; other fields are
  type-checked and not stored (the schema has no place for them);
- ``.user`` (``user_id``): every other field in the user's ``attributes`` (a JSON object, typed as
  the header says: ``age:token`` stays text, a float is a number, a sequence a list);
- ``.item`` (``item_id``): the first title-like field (``title``, ``*_title``, ``name``,
  ``*_name``) is the item's ``title`` and ``name`` (a ``token_seq`` title is its words joined
  again); every other ``token_seq`` field (genres, classes) gives ``Category`` nodes, one per
  (field, value), with ``BELONGS_TO``; ``brand:token`` gives ``Brand`` + ``MADE_BY``, ``price:float``
  the item's ``price``; every other field goes in ``attributes``;
- ``.kg`` (``head_id``, ``relation_id``, ``tail_id``): ``Entity`` nodes and one edge type per
  relation, declared in the store on load (``film.film.actor`` → ``FILM_FILM_ACTOR``, see
  :func:`graph.schema.relation_name`; the name as given is kept as the type's ``origin``);
- ``.link`` (``item_id``, ``entity_id``): ``Item -SAME_AS-> Entity``.

The dataset's name is the business domain unless one is given: a ``Domain`` node, ``IN_DOMAIN``
for every item, ``ACTIVE_IN`` for every user and ``domain`` on each interaction. Ids keep the
dataset's apart: ``ml-100k:u:196``, ``ml-100k:i:242``, ``ml-100k:class:Comedy``, ``ml-100k:b:Acme``
and entities ``ml-100k:e:m.0bln8`` (``entity_namespace`` replaces ``ml-100k:e``, e.g. ``freebase``
for datasets that share one KG).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from graph.errors import InputError, SchemaError
from graph.schema import SCHEMA, RelType, external_relation, relation_name
from graph.subgraph import EdgeKey
from graph.validate import MAX_KEY_LENGTH
from loaders.readers.atomic import AtomicFile, read_atomic, typed
from loaders.readers.dataset import Dataset
from loaders.readers.parsing import collapse_repeats, parse_timestamps

SUFFIXES = ("inter", "user", "item", "kg", "link")
_TITLE = (re.compile(r"title"), re.compile(r".+_title"), re.compile(r"name"), re.compile(r".+_name"))


@dataclass(frozen=True)
class Ids:
    """How raw ids of one dataset become node ids (prefixes keep datasets apart)."""

    dataset: str
    entity_namespace: str

    @property
    def user(self) -> str:
        return f"{self.dataset}:u:"

    @property
    def item(self) -> str:
        return f"{self.dataset}:i:"

    @property
    def brand(self) -> str:
        return f"{self.dataset}:b:"

    @property
    def entity(self) -> str:
        return f"{self.entity_namespace}:"

    def category(self, field: str) -> str:
        return f"{self.dataset}:{field}:"


@dataclass
class Parts:
    """What the files give, gathered before it becomes a :class:`Dataset`."""

    source: str
    domain: str
    nodes: dict[str, list[pd.DataFrame]]
    edges: dict[EdgeKey, pd.DataFrame]
    relations: list[RelType]

    def add_nodes(self, label: str, frame: pd.DataFrame) -> None:
        self.nodes.setdefault(label, []).append(frame)

    def node_frame(self, label: str) -> pd.DataFrame:
        """One row per id: the first frame that has the id wins (the fullest frames come first)."""
        frame = pd.concat(self.nodes[label], ignore_index=True).drop_duplicates("id")
        return frame.assign(source=self.source).reset_index(drop=True)


@dataclass(frozen=True)
class RecBoleReader:
    """A RecBole dataset folder → a :class:`Dataset` with the external relation types it needs."""

    name: ClassVar[str] = "recbole"
    entity_namespace: str | None = None  # default "{dataset}:e"

    def read(self, path: Path, *, domain: str | None = None) -> Dataset:
        files = atomic_files(path)
        dataset = path.resolve().name
        ids = Ids(dataset, self.entity_namespace or f"{dataset}:e")
        parts = Parts(f"recbole:{dataset}", domain or dataset, {}, {}, [])
        for suffix in ("item", "user", "inter", "link", "kg"):  # fullest node frames first
            if suffix in files:
                READ[suffix](read_atomic(files[suffix]), ids, parts)
        return _dataset(parts)


def atomic_files(path: Path) -> dict[str, Path]:
    """The dataset's files by suffix; refused: no folder, no atomic file, a .kg without .link."""
    if not path.is_dir():
        raise InputError(
            f"{path}: no such folder; give the folder of a RecBole dataset (NAME/NAME.inter ...)"
        )
    name = path.resolve().name
    found = {s: path / f"{name}.{s}" for s in SUFFIXES if (path / f"{name}.{s}").is_file()}
    if not found:
        listed = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        wanted = ", ".join(f"{name}.{s}" for s in SUFFIXES)
        raise InputError(f"{path}: no RecBole atomic file ({wanted}); it holds {listed}")
    if "kg" in found and "link" not in found:
        raise InputError(
            f"{found['kg']}: a .kg needs {path / (name + '.link')} to attach its entities to items; add it"
        )
    return found


def _attributes(af: AtomicFile, fields: list[str]) -> list[str | None]:
    """Per row, the ``fields`` as a JSON object of typed values (None when all are missing)."""
    if not fields:
        return [None] * len(af.raw)
    out: list[str | None] = []
    for cells in zip(*(af.values[f] for f in fields), strict=True):
        obj = {f: typed(v) for f, v in zip(fields, cells, strict=True) if typed(v) is not None}
        out.append(json.dumps(obj, ensure_ascii=False, sort_keys=True) if obj else None)
    return out


def _unique(af: AtomicFile, key: str) -> AtomicFile:
    """One row per id: a repeated identical row is dropped, a repeated id with other values refused."""
    distinct = ~af.raw.duplicated()
    again = af.raw[distinct].duplicated(key)
    af.check(
        again.reindex(af.raw.index, fill_value=False),
        key,
        "{value!r} appears again with other values; keep one row per id",
    )
    if distinct.all():
        return af
    raw = af.raw[distinct]
    return AtomicFile(af.where, af.types, raw, {k: v[distinct] for k, v in af.values.items()})


def _read_users(af: AtomicFile, ids: Ids, parts: Parts) -> None:
    af = _unique(af, af.require("user_id"))
    users = af.keys("user_id", ids.user)
    fields = [f for f in af.types if f != "user_id"]
    parts.add_nodes(
        "User", pd.DataFrame({"id": ids.user + users, "name": users, "attributes": _attributes(af, fields)})
    )


def _title_field(af: AtomicFile) -> str | None:
    for pattern in _TITLE:
        for name, kind in af.types.items():
            if pattern.fullmatch(name) and kind in ("token", "token_seq") and name != "item_id":
                return name
    return None


def _read_items(af: AtomicFile, ids: Ids, parts: Parts) -> None:
    af = _unique(af, af.require("item_id"))
    items = af.keys("item_id", ids.item)
    item_ids = ids.item + items
    title = _title_field(af)
    names = _text(af.values[title]) if title else pd.Series(None, index=items.index, dtype=object)
    frame = pd.DataFrame({"id": item_ids, "name": names.fillna(items), "title": names})
    categories = [f for f, k in af.types.items() if k == "token_seq" and f != title]
    special = {"item_id", title, *categories}
    if af.types.get("brand") == "token":
        special.add("brand")
        _brands(af.values["brand"], item_ids, ids, parts)
    if af.types.get("price") == "float":
        special.add("price")
        frame["price"] = af.values["price"]
    frame["attributes"] = _attributes(af, [f for f in af.types if f not in special])
    parts.add_nodes("Item", frame)
    for field in categories:
        _categories(af, field, item_ids, ids, parts)


def _text(values: pd.Series) -> pd.Series:
    """Titles as text: a token_seq's words joined by one space."""
    return values.map(lambda v: " ".join(v) if isinstance(v, list) else v)


def _categories(af: AtomicFile, field: str, item_ids: pd.Series, ids: Ids, parts: Parts) -> None:
    prefix = ids.category(field)
    long = af.values[field].map(
        lambda v: isinstance(v, list) and any(len(prefix + x) > MAX_KEY_LENGTH for x in v)
    )
    af.check(long, field, f"a value too long for an id (ids may have at most {MAX_KEY_LENGTH:,} characters)")
    pairs = pd.DataFrame({"head": item_ids, "value": af.values[field]}).explode("value").dropna()
    pairs = pairs.drop_duplicates()
    values = pd.Series(pairs["value"].unique())
    parts.add_nodes("Category", pd.DataFrame({"id": prefix + values, "name": values}))
    edges = pd.DataFrame({"head": pairs["head"], "tail": prefix + pairs["value"]})
    _add_edges(parts, ("Item", "BELONGS_TO", "Category"), edges)


def _brands(values: pd.Series, item_ids: pd.Series, ids: Ids, parts: Parts) -> None:
    pairs = pd.DataFrame({"head": item_ids, "brand": values}).dropna()
    names = pd.Series(pairs["brand"].unique())
    parts.add_nodes("Brand", pd.DataFrame({"id": ids.brand + names, "name": names}))
    _add_edges(
        parts,
        ("Item", "MADE_BY", "Brand"),
        pd.DataFrame({"head": pairs["head"], "tail": ids.brand + pairs["brand"]}),
    )


def _add_edges(parts: Parts, key: EdgeKey, frame: pd.DataFrame) -> None:
    frame = frame.assign(confidence=1.0, source=parts.source).reset_index(drop=True)
    parts.edges[key] = pd.concat([parts.edges[key], frame]) if key in parts.edges else frame


def _read_interactions(af: AtomicFile, ids: Ids, parts: Parts) -> None:
    users = af.keys(af.require("user_id"), ids.user)
    items = af.keys(af.require("item_id"), ids.item)
    rating = af.values[af.require("rating", ("float",))] if "rating" in af.types else None
    if "timestamp" in af.types:
        ts = parse_timestamps(af.raw[af.require("timestamp", ("float",))], af.where, af.header("timestamp"))
    else:
        ts = pd.Series(pd.NaT, index=users.index, dtype="datetime64[us]")
    edges = pd.DataFrame(
        {
            "head": ids.user + users,
            "tail": ids.item + items,
            "kind": "rating" if rating is not None else "interaction",
            "ts": ts,
            "rating": rating if rating is not None else float("nan"),
            "domain": parts.domain,
            "count": 1,
            "confidence": 1.0,
            "source": parts.source,
        }
    )
    parts.edges[("User", "INTERACTED", "Item")] = collapse_repeats(edges)
    parts.add_nodes("User", pd.DataFrame({"id": ids.user + users.unique(), "name": users.unique()}))
    parts.add_nodes("Item", pd.DataFrame({"id": ids.item + items.unique(), "name": items.unique()}))


def _read_links(af: AtomicFile, ids: Ids, parts: Parts) -> None:
    items = af.keys(af.require("item_id"), ids.item)
    entities = af.keys(af.require("entity_id"), ids.entity)
    pairs = pd.DataFrame({"item": items, "entity": entities}).drop_duplicates()
    parts.add_nodes("Item", pd.DataFrame({"id": ids.item + pairs["item"], "name": pairs["item"]}))
    _add_entities(parts, ids, pairs["entity"])
    same = pd.DataFrame({"head": ids.item + pairs["item"], "tail": ids.entity + pairs["entity"]})
    _add_edges(parts, ("Item", "SAME_AS", "Entity"), same)


def _add_entities(parts: Parts, ids: Ids, raw: pd.Series) -> None:
    raw = pd.Series(raw.unique())
    parts.add_nodes("Entity", pd.DataFrame({"id": ids.entity + raw, "name": raw, "external_id": raw}))


def _read_kg(af: AtomicFile, ids: Ids, parts: Parts) -> None:
    heads = af.keys(af.require("head_id"), ids.entity)
    tails = af.keys(af.require("tail_id"), ids.entity)
    origins = af.keys(af.require("relation_id"))
    names = _relation_names(af, origins)
    triples = pd.DataFrame({"head": heads, "rel": origins.map(names), "tail": tails}).drop_duplicates()
    _add_entities(parts, ids, pd.concat([triples["head"], triples["tail"]]))
    for rel, group in triples.groupby("rel", sort=True):
        edges = pd.DataFrame({"head": ids.entity + group["head"], "tail": ids.entity + group["tail"]})
        _add_edges(parts, ("Entity", str(rel), "Entity"), edges)
    by_name = {n: o for o, n in names.items()}
    for name in sorted(by_name):
        parts.relations.append(external_relation(name, [("Entity", "Entity")], origin=by_name[name]))


def _relation_names(af: AtomicFile, origins: pd.Series) -> dict[str, str]:
    """Each relation's safe type name; refused: no name, two relations on one name, a MoKG name."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for origin in map(str, origins.unique()):
        try:
            name = relation_name(origin)
            if name in seen:
                raise SchemaError(f"{origin!r} and {seen[name]!r} both map to the type {name}; rename one")
            SCHEMA.extend([external_relation(name, [("Entity", "Entity")], origin=origin)])
            names[origin], seen[name] = name, origin
        except SchemaError as exc:
            af.check(origins == origin, "relation_id", f"{{value!r}}: {exc}")
    return names


READ: dict[str, Any] = {
    "user": _read_users,
    "item": _read_items,
    "inter": _read_interactions,
    "link": _read_links,
    "kg": _read_kg,
}


def _dataset(parts: Parts) -> Dataset:
    nodes = {label: parts.node_frame(label) for label in parts.nodes}
    domain = parts.domain
    nodes["Domain"] = pd.DataFrame({"id": [domain], "name": [domain], "source": [parts.source]})
    for label, rel in (("Item", "IN_DOMAIN"), ("User", "ACTIVE_IN")):
        if label in nodes:
            ends = pd.DataFrame({"head": nodes[label]["id"], "tail": domain})
            _add_edges(parts, (label, rel, "Domain"), ends)
    edges = {k: df.drop_duplicates(["head", "tail"]).reset_index(drop=True) for k, df in parts.edges.items()}
    return Dataset(parts.source, nodes, edges, relations=tuple(parts.relations))
