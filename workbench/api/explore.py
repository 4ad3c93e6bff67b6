"""Workbench API, explore: search nodes, a node's properties, its neighbourhood, the schema's names.

Every read is a named query of ``queries/library`` run through ``store.run`` (under the store's
query limits): ``search_nodes``, ``node_properties``, ``node_edges`` and ``neighbour_edges``.
Labels and relation types from the browser are checked against the store's schema before any
query runs.

The neighbourhood is expanded from the seed (``node_edges``: one undirected match on the seed's
key, which on LadybugDB is about three times faster than a union of the two directions; the
direction of each edge comes from the edge itself) and then hop by hop (``neighbour_edges``, one
query per label of the frontier) until ``hops`` (1–3) or the node cap ``limit``: nodes past the
cap and the edges to them are left out and the answer says ``truncated``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query

from graph.errors import InputError
from graph.schema import Schema
from graph.store import GraphStore
from graph.tables import with_columns
from workbench.app import Context, NotFound, context

router = APIRouter(tags=["explore"])
Ctx = Annotated[Context, Depends(context)]
Text = Annotated[str, Query(min_length=1, max_length=200, description="Text the name or id contains.")]
MAX_NODES = 2000


@router.get("/labels")
def labels(ctx: Ctx) -> dict[str, list[str]]:
    """The MoKG's node labels and the store's relation types (its own and those declared)."""
    with ctx.use() as store:
        schema = store.refresh_schema()
    return {"labels": sorted(schema.data_labels()), "relations": sorted(schema.rel_types)}


@router.get("/search")
def search(
    ctx: Ctx,
    q: Text,
    label: Annotated[str | None, Query(max_length=100, description="Only this label.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, list[dict[str, Any]]]:
    """Nodes whose name or id contains ``q`` (any case): exact matches first, then prefixes."""
    with ctx.use() as store:
        wanted = [data_label(store.schema, label)] if label else store.schema.data_labels()
        df = store.run("search_nodes", {"q": q, "labels": wanted, "limit": limit})
    return {"hits": records(with_columns(df, ["label", "id", "name"]))}


@router.get("/node/{label}/{node_id:path}")
def node(
    ctx: Ctx,
    label: Annotated[str, Path(max_length=100)],
    node_id: Annotated[str, Path(max_length=1000)],
) -> dict[str, Any]:
    """One node's properties."""
    with ctx.use() as store:
        found = fetch_node(store, label, node_id)
    return {"label": label, "id": node_id, "properties": found}


@router.get("/neighbourhood")
def neighbourhood(
    ctx: Ctx,
    label: Annotated[str, Query(max_length=100)],
    id: Annotated[str, Query(min_length=1, max_length=1000)],
    hops: Annotated[int, Query(ge=1, le=3)] = 1,
    rel: Annotated[list[str] | None, Query(description="Only these relation types (repeat).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_NODES, description="The most nodes to return.")] = 200,
) -> dict[str, Any]:
    """The nodes within ``hops`` of one node and the edges between them (with run and source)."""
    with ctx.use() as store:
        lab = data_label(store.schema, label)
        rels = checked_relations(store.schema, rel or [])
        hood = Neighbourhood(limit)
        if not expand(
            store, hood, lab, id, hops, rels
        ):  # no edge (of those types): the node alone, if it exists
            hood.add_node(lab, id, fetch_node(store, lab, id).get("name"))
    return hood.answer()


def fetch_node(store: GraphStore, label: str, node_id: str) -> dict[str, Any]:
    """The node's properties (JSON-ready), or NotFound."""
    lab = data_label(store.schema, label)
    df = store.run("node_properties", {"label": lab, "id": node_id})
    if not len(df):
        raise NotFound(f"no {lab} with id {node_id!r}; search for it with /api/search?q=...")
    props = {str(k): v for k, v in dict(df["node"].iloc[0]).items() if not str(k).startswith("_")}
    plain: dict[str, Any] = records(pd.DataFrame([props]))[0]
    return plain


def data_label(schema: Schema, label: str) -> str:
    """A label of the MoKG itself (the store's bookkeeping labels, such as Run, are not explored)."""
    lab = schema.label(label)
    if lab.system:
        raise InputError(
            f"{lab.name} is the store's bookkeeping, not part of the MoKG; explore one of: "
            f"{', '.join(sorted(schema.data_labels()))} (runs: /api/runs)"
        )
    return lab.name


def checked_relations(schema: Schema, names: list[str]) -> list[str]:
    """Relation type names, each checked against the store's schema (SchemaError otherwise)."""
    return list(dict.fromkeys(schema.rel(n).name for n in names))


@dataclass
class Neighbourhood:
    """Nodes by key (``Label:id``) and edges by (source, type, target), up to ``cap`` nodes."""

    cap: int
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    truncated: bool = False

    def add_node(self, label: str, node_id: str, name: Any) -> bool:
        """Whether the node is (now) in; False when the cap left it out."""
        key = f"{label}:{node_id}"
        if key in self.nodes:
            return True
        if len(self.nodes) >= self.cap:
            self.truncated = True
            return False
        self.nodes[key] = {"key": key, "label": label, "id": node_id, "name": _plain(name)}
        return True

    def answer(self) -> dict[str, Any]:
        edges = sorted(self.edges.values(), key=lambda e: (e["source"], e["type"], e["target"]))
        return {"nodes": list(self.nodes.values()), "edges": edges, "truncated": self.truncated}


def expand(
    store: GraphStore, hood: Neighbourhood, label: str, node_id: str, hops: int, rels: list[str]
) -> bool:
    """Breadth-first from the seed (``node_edges``, by its key), then hop by hop over the
    frontier (``neighbour_edges``, one query per label). False when the seed has no edges (of
    ``rels``): then it may not exist either."""
    row_cap = 2 * hood.cap + 1
    seed = store.run("node_edges", {"label": label, "id": node_id, "rels": rels, "limit": row_cap})
    if not len(seed):  # (a Bolt server may send no columns for no rows)
        return False
    hood.add_node(label, node_id, seed["name"].iloc[0])
    frontier = _take(hood, label, seed, row_cap)
    for _ in range(hops - 1):
        if not frontier or hood.truncated:
            break
        reached: dict[str, set[str]] = {}
        for lab, ids in sorted(frontier.items()):
            params = {"label": lab, "ids": sorted(ids), "rels": rels, "limit": row_cap}
            df = store.run("neighbour_edges", params)
            for other, new in _take(hood, lab, df, row_cap).items():
                reached.setdefault(other, set()).update(new)
        frontier = reached
    return True


def _take(hood: Neighbourhood, label: str, df: pd.DataFrame, row_cap: int) -> dict[str, set[str]]:
    """Add the rows' edges (and their far nodes, up to the cap); the far nodes new to ``hood``."""
    reached: dict[str, set[str]] = {}
    hood.truncated |= len(df) >= row_cap
    for row in df.itertuples(index=False):
        _add_edge(hood, label, row, reached)
    return reached


def _add_edge(hood: Neighbourhood, label: str, row: Any, reached: dict[str, set[str]]) -> None:
    seen_before = f"{row.other_label}:{row.other}" in hood.nodes
    if not hood.add_node(str(row.other_label), str(row.other), row.other_name):
        return
    if not seen_before:
        reached.setdefault(str(row.other_label), set()).add(str(row.other))
    here, there = f"{label}:{row.id}", f"{row.other_label}:{row.other}"
    source, target = (here, there) if row.out else (there, here)
    hood.edges[(source, str(row.type), target)] = {
        "source": source,
        "target": target,
        "type": str(row.type),
        "run_id": _plain(row.run_id),
        "source_name": _plain(row.source),
        "confidence": _plain(row.confidence),
    }


def _plain(value: Any) -> Any:
    """A scalar as JSON has it (missing → None)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN → null, timestamps ISO, numpy → Python), via pandas' JSON."""
    rows: list[dict[str, Any]] = json.loads(df.to_json(orient="records", date_format="iso"))
    return rows
