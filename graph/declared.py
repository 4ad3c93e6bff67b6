"""Relation types declared in a store: how they are kept in it and read back.

A store's schema is the MoKG's own (:data:`graph.schema.SCHEMA`) extended with the relation types
declared in it (:meth:`graph.schema.Schema.extend`): a KG a user brought (a RecBole ``.kg`` file's
relations, declared by ``mokg load recbole``) or a type declared by hand (``mokg schema
add-relation``). Each endpoint pair of a declared type is one row of the system label
:data:`graph.schema.DECLARED`, written in the transaction of the run that declares it, so

- a store opened by a fresh process knows its types (``store.schema`` reads the rows once);
- the declaration is part of that run: ``delete_run`` removes it with the edges, unless edges of
  another run still use the type (then the declaration is kept, as a node another run uses is);
- the rows, with their run and time, are the store's history of schema extensions
  (``mokg schema list``).

A row that does not make a valid declaration (written by hand with ``mokg cypher --write``) is
ignored with a warning, so it can never put an unchecked name into Cypher text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from graph.errors import SchemaError
from graph.runs import log
from graph.schema import DECLARED, KEY, SCHEMA, RelType, Schema, external_relation

if TYPE_CHECKING:
    from graph.store import GraphStore

Executor = Callable[[str, Mapping[str, Any]], pd.DataFrame]


class DropPair(Protocol):
    """A backend's way to drop one endpoint pair of a declared type (``last``: its only one)."""

    def __call__(self, ex: Executor, rel: str, head: str, tail: str, *, last: bool) -> None: ...


COLUMNS = ("relation", "from_label", "to_label", "origin", "description")


def declaration_id(relation: str, head: str, tail: str) -> str:
    """The key of one declared endpoint pair, e.g. ``(Entity)-[:FILM_FILM_ACTOR]->(Entity)``."""
    return f"({head})-[:{relation}]->({tail})"


def declaration_frame(relations: Sequence[RelType], source: str | None = None) -> pd.DataFrame:
    """The :data:`DECLARED` rows of ``relations``: one per endpoint pair."""
    rows = [
        {
            KEY: declaration_id(rel.name, head, tail),
            "name": rel.name,
            "relation": rel.name,
            "from_label": head,
            "to_label": tail,
            "origin": rel.origin or None,
            "description": rel.description,
            "source": source,
        }
        for rel in relations
        for head, tail in rel.endpoints
    ]
    return pd.DataFrame(rows, columns=[KEY, "name", *COLUMNS, "source"])


def extended_schema(rows: pd.DataFrame, base: Schema = SCHEMA) -> Schema:
    """``base`` extended with the declarations in ``rows`` (the :data:`DECLARED` rows of a store);
    a row that does not make a valid declaration is ignored with one warning line."""
    schema = base
    if not len(rows):
        return schema
    for row in rows.sort_values(["relation", KEY]).to_dict("records"):
        try:
            rel = external_relation(
                str(row["relation"]),
                [(str(row["from_label"]), str(row["to_label"]))],
                origin=_text(row.get("origin")),
                description=_text(row.get("description")),
            )
            schema = schema.extend([rel])
        except SchemaError as exc:
            log.warning(
                "the store's %s row %r is not a valid declaration and is ignored (%s); "
                "`mokg runs delete %s` removes it",
                DECLARED,
                str(row.get(KEY))[:120],
                exc,
                row.get("run_id"),
            )
    return schema


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def declare_relation(store: GraphStore, name: str, head: str, tail: str, description: str = "") -> str | None:
    """Declare ``(head)-[:name]->(tail)`` in the store in a run of its own; return the run id, or
    None if the store has it already. The name and labels are checked (against the store's
    schema) before anything is written."""
    rel = external_relation(name, [(head, tail)], description=description)
    schema = store.refresh_schema()
    if schema.extend([rel]) is schema:
        return None
    with store.run_context("schema", f"declare {declaration_id(name, head, tail)}") as run_id:
        store.declare_relations([rel], run_id=run_id)
    return run_id


def schema_listing(store: GraphStore, *, external_only: bool = False) -> pd.DataFrame:
    """:func:`relation_table` of the store (only its declared types with ``external_only``)."""
    schema = store.refresh_schema()
    table = relation_table(schema, store.node_table(DECLARED, ["run_id", "created_at"]))
    if external_only:
        table = table[table["kind"] == "external"].reset_index(drop=True)
    return table


def relation_table(schema: Schema, declarations: pd.DataFrame) -> pd.DataFrame:
    """Every relation type of ``schema``, one row per endpoint pair: ``kind`` (mokg, mined or
    external), the source name of an external type, and the run that declared it and when."""
    declared = {str(r[KEY]): r for r in declarations.to_dict("records")} if len(declarations) else {}
    rows = []
    for rel in schema.rel_types.values():
        kind = "external" if rel.external else "mined" if rel.mined else "mokg"
        for head, tail in rel.endpoints:
            row = declared.get(declaration_id(rel.name, head, tail), {})
            rows.append(
                {
                    "relation": rel.name,
                    "from": head,
                    "to": tail,
                    "kind": kind,
                    "origin": rel.origin or None,
                    "declared_by": row.get("run_id"),
                    "declared_at": row.get("created_at"),
                }
            )
    return pd.DataFrame(rows)


def undeclare(
    ex: Executor,
    q: Callable[..., str],
    schema: Schema,
    run_id: str,
    counts: dict[str, int],
    drop: DropPair,
) -> None:
    """Inside ``delete_run``'s transaction, after the run's edges are gone: remove the run's
    declarations (and ``drop`` their types where the database has tables) unless edges of another
    run still use the endpoint pair. Names reach Cypher only if the store's schema declares them."""
    rows = ex(q("run_declarations"), {"run_id": run_id})
    gone: dict[str, list[tuple[str, str]]] = {}
    for decl_id, rel, head, tail in (
        rows[[KEY, "relation", "from_label", "to_label"]].values if len(rows) else []
    ):
        known = schema.rel_types.get(str(rel))
        valid = known is not None and known.external and (head, tail) in known.endpoints
        if valid and int(ex(q("count_edges", head=head, rel=rel, tail=tail), {})["c"].iloc[0]):
            counts["declarations_kept"] += 1
            continue
        ex(q("delete_declaration"), {"id": decl_id})
        counts["declarations_removed"] += 1
        if valid:
            gone.setdefault(str(rel), []).append((str(head), str(tail)))
    left = ex(q("declared_relations"), {})
    still = set(left["relation"]) if len(left) else set()
    for rel, pairs in gone.items():
        if rel not in still:
            drop(ex, rel, *pairs[0], last=True)
            continue
        for head, tail in pairs:
            drop(ex, rel, head, tail, last=False)
