"""The named Cypher library: ``queries/library/*.cypher``, one query per file.

A file starts with a header of ``//`` lines::

    // name: user_intents
    // description: The intents a user has, most confident first.
    // param: user_id: string
    // param: min_confidence: float = 0.0
    // dialects: neo4j, embedded

``NAME.cypher`` serves the dialects its header lists; ``NAME.neo4j.cypher`` and
``NAME.embedded.cypher`` are variants of one query where the dialects differ (their headers must
agree). Parameter types: ``string``, ``int``, ``float``, ``bool``, ``list`` (comma-separated
strings on the command line), and four *structural* types that Cypher cannot take as
parameters: ``label``, ``rel_type`` and ``rel_types`` (``A|B|C``; checked against the store's
schema: the MoKG's own plus the relation types declared in the store) and ``hops`` (an integer
1–5). Structural values fill ``{{name}}`` slots after validation; all others travel as
``$parameters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from graph.errors import QueryError, SchemaError
from graph.schema import SCHEMA, Schema
from queries.templates import render

LIBRARY_DIR = Path(__file__).parent / "library"
DIALECTS = ("neo4j", "embedded")
STRUCTURAL = ("label", "rel_type", "rel_types", "hops")
TYPES = ("string", "int", "float", "bool", "list", *STRUCTURAL)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^//\s*(\w+):\s*(.*)$")
_WRITES = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE)\b")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any = None
    required: bool = True

    def coerce(self, query: str, value: Any, schema: Schema = SCHEMA) -> Any:
        """The value in this parameter's type (strings from the CLI are parsed)."""
        try:
            if self.type in ("label", "rel_type"):
                return schema.label(str(value)).name if self.type == "label" else schema.rel(str(value)).name
            if self.type == "rel_types":
                return _to_rel_types(value, schema)
            return _COERCE[self.type](value)
        except (ValueError, TypeError, SchemaError) as exc:
            raise QueryError(
                f"query {query!r}: parameter {self.name!r} must be {self.type}, got {value!r} ({exc})"
            ) from None

    def describe(self) -> str:
        text = f"{self.name}: {self.type}"
        return text if self.required else f"{text} = {self.default}"


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("true", "1", "yes"):
        return True
    if str(v).lower() in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def _to_int(v: Any) -> int:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError("expected an integer")
    return int(v)


def _to_hops(v: Any) -> int:
    n = _to_int(v)
    if not 1 <= n <= 5:
        raise ValueError("hops must be between 1 and 5")
    return n


def _to_rel_types(v: Any, schema: Schema) -> str:
    """``A|B|C`` (or a list, or commas) → the schema's names joined by ``|``, each checked."""
    names = re.split(r"[|,]", v) if isinstance(v, str) else [str(x) for x in v]
    checked = [schema.rel(n.strip()).name for n in names if n.strip()]
    if not checked:
        raise ValueError("expected one or more relation types, e.g. NEEDS|SERVES")
    return "|".join(dict.fromkeys(checked))


def _to_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v]


_COERCE: dict[str, Any] = {
    "string": str,
    "int": _to_int,
    "float": float,
    "bool": _to_bool,
    "list": _to_list,
    "hops": _to_hops,
}


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return any(_WRITES.search(t) for t in self.texts.values())

    def text(self, dialect: str) -> str:
        if dialect not in self.texts:
            raise QueryError(
                f"query {self.name!r} has no {dialect} version (it has: {', '.join(self.texts)})"
            )
        return self.texts[dialect]

    def bind(
        self, dialect: str, given: Mapping[str, Any], schema: Schema = SCHEMA
    ) -> tuple[str, dict[str, Any]]:
        """Check and coerce parameters (labels and relation types against ``schema``, the
        store's); return the Cypher text and its $parameters."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise QueryError(
                f"query {self.name!r} has no parameter(s) {unknown}; it takes: {self.signature()}"
            )
        values: dict[str, Any] = {}
        for p in self.params:
            if p.name in given and given[p.name] is not None:
                values[p.name] = p.coerce(self.name, given[p.name], schema)
            elif p.required:
                raise QueryError(
                    f"query {self.name!r} needs parameter {p.name!r} ({p.type}): "
                    f"pass -p {p.name}=VALUE (it takes: {self.signature()})"
                )
            else:
                values[p.name] = p.coerce(self.name, p.default, schema)
        slots = {k: v for k, v in values.items() if known[k].type in STRUCTURAL}
        params = {k: v for k, v in values.items() if known[k].type not in STRUCTURAL}
        return render(self.text(dialect), **slots), params

    def signature(self) -> str:
        return ", ".join(p.describe() for p in self.params) or "no parameters"


def _parse_param(path: Path, spec: str) -> Param:
    m = re.match(r"^(\w+):\s*(\w+)\s*(?:=\s*(.*))?$", spec.strip())
    if not m or m.group(2) not in TYPES:
        raise QueryError(f"{path.name}: bad param line {spec!r} (types: {', '.join(TYPES)})")
    name, typ, default = m.group(1), m.group(2), m.group(3)
    if default is None:
        return Param(name, typ)
    return Param(name, typ, default.strip(), required=False)


def parse_file(path: Path) -> tuple[NamedQuery, list[str]]:
    """One query file → (query with its text under each dialect it serves, those dialects)."""
    header: dict[str, str] = {}
    params: list[Param] = []
    body: list[str] = []
    for line in path.read_text().splitlines():
        m = _HEADER.match(line.strip())
        if m and not body:
            if m.group(1) == "param":
                params.append(_parse_param(path, m.group(2)))
            else:
                header[m.group(1)] = m.group(2).strip()
        elif line.strip() or body:
            body.append(line)
    name = header.get("name", "")
    stem = path.name.split(".")[0]
    if name != stem or not _NAME.match(name):
        raise QueryError(f"{path.name}: header name {name!r} must match the file name {stem!r}")
    dialects = [d.strip() for d in header.get("dialects", "").split(",") if d.strip()]
    if not dialects or any(d not in DIALECTS for d in dialects):
        raise QueryError(f"{path.name}: dialects must be a subset of {DIALECTS}, got {dialects}")
    text = "\n".join(body).strip()
    q = NamedQuery(name, header.get("description", ""), tuple(params), {d: text for d in dialects})
    return q, dialects


@dataclass(frozen=True)
class Library:
    queries: dict[str, NamedQuery]

    def get(self, name: str) -> NamedQuery:
        if name not in self.queries:
            raise QueryError(
                f"no named query {name!r}; `mokg query --list` shows them: {', '.join(sorted(self.queries))}"
            )
        return self.queries[name]

    def names(self) -> list[str]:
        return sorted(self.queries)


def load_library(directory: Path = LIBRARY_DIR) -> Library:
    """Read every ``.cypher`` file; variants of one name are merged by dialect."""
    return _load(directory)


@cache
def _load(directory: Path) -> Library:
    merged: dict[str, NamedQuery] = {}
    for path in sorted(directory.glob("*.cypher")):
        q, dialects = parse_file(path)
        prev = merged.get(q.name)
        if prev is None:
            merged[q.name] = q
            continue
        if prev.params != q.params:
            raise QueryError(f"{path.name}: parameters differ from the other variant of {q.name!r}")
        clash = set(prev.texts) & set(dialects)
        if clash:
            raise QueryError(f"{path.name}: {q.name!r} defined twice for {sorted(clash)}")
        merged[q.name] = NamedQuery(
            q.name, prev.description or q.description, q.params, {**prev.texts, **q.texts}
        )
    return Library(merged)


def is_query_name(text: str) -> bool:
    """True if ``text`` looks like a library name rather than Cypher."""
    return bool(_NAME.match(text.strip()))
