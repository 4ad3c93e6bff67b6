"""Stage D4: the documents into the store, in the build's run and one transaction.

``Document`` nodes (title as name, text, url, domain, sha256), ``Chunk`` nodes (text, document,
position, character offsets) with ``HAS_CHUNK``, ``DESCRIBES`` to the item a document is about
(an item the store lacks is created from the title), and ``MENTIONS`` from a chunk to every
entity linked in it, with the spans and the first surface form. New ``Concept`` s (named entities
that linked nowhere) are created; existing nodes are never rewritten (their names and provenance
belong to the run that made them).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pandas as pd

from graph.store import GraphStore
from graph.subgraph import EdgeKey
from loaders.documents import DocumentSet
from mining.documents.analyse import Analysis


def _missing(store: GraphStore, label: str, rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    have = set(store.node_table(label)["id"]) if rows else set()
    return pd.DataFrame([r for i, r in sorted(rows.items()) if i not in have])


def _mentions(analysis: Analysis) -> dict[EdgeKey, pd.DataFrame]:
    spans: dict[tuple[str, str, str], list[list[int]]] = defaultdict(list)
    surface: dict[tuple[str, str, str], str] = {}
    for link in analysis.links:
        if link.entity is not None:
            k = (link.mention.chunk, link.entity.type, link.entity.id)
            spans[k].append([link.mention.start, link.mention.end])
            surface.setdefault(k, link.mention.surface)
    rows: dict[EdgeKey, list[dict[str, Any]]] = defaultdict(list)
    for (chunk, label, node), where in sorted(spans.items()):
        row = {
            "head": chunk,
            "tail": node,
            "spans": json.dumps(where),
            "surface": surface[chunk, label, node],
        }
        rows[("Chunk", "MENTIONS", label)].append(row)
    return {k: pd.DataFrame(v) for k, v in rows.items()}


def record_documents(store: GraphStore, run_id: str, docs: DocumentSet, analysis: Analysis) -> dict[str, int]:
    """Write the documents, chunks, links and new items/concepts; returns rows per table."""
    source = f"documents:{docs.source.name}"
    documents = pd.DataFrame(
        [
            {
                "id": d.id,
                "name": d.title or d.id,
                "text": d.text,
                "url": d.url or None,
                "domain": d.domain or None,
                "sha256": d.sha256,
                "source": source,
            }
            for d in docs.documents
        ]
    )
    chunks = pd.DataFrame(
        [
            {
                "id": c.id,
                "name": f"{c.document} #{c.position}",
                "text": c.text,
                "document": c.document,
                "position": c.position,
                "char_start": c.start,
                "char_end": c.end,
                "source": source,
            }
            for c in analysis.chunks
        ]
    )
    items = {
        d.item: {"id": d.item, "name": d.title or d.item, "title": d.title or None, "source": source}
        for d in docs.documents
        if d.item
    }
    concepts = {
        link.entity.id: {"id": link.entity.id, "name": link.entity.name, "source": source}
        for link in analysis.links
        if link.entity is not None and link.entity.new
    }
    nodes = {"Document": documents, "Chunk": chunks}
    for label, rows in (("Item", items), ("Concept", concepts)):
        frame = _missing(store, label, rows)
        if len(frame):
            nodes[label] = frame
    edges: dict[EdgeKey, pd.DataFrame] = {
        ("Document", "HAS_CHUNK", "Chunk"): chunks[["document", "id"]].set_axis(["head", "tail"], axis=1),
        **_mentions(analysis),
    }
    about = [{"head": d.id, "tail": d.item} for d in docs.documents if d.item]
    if about:
        edges[("Document", "DESCRIBES", "Item")] = pd.DataFrame(about)
    report = store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
    return {name: t.rows for name, t in [*report.nodes.items(), *report.edges.items()]}
