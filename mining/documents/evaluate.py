"""Scoring a document build against what the world's documents state (``hidden/documents/``).

- **Triples**: precision, recall and F1 per relation of the build's accepted triples against the
  facts the documents state (``statements.parquet``; a CO_OCCURS_WITH pair counts once, in either
  direction).
- **Entity linking**, from the store's ``MENTIONS`` edges of the build's chunks against the
  written names (``mentions.parquet``): *recall* = share of names of KG entities linked to the
  right entity; *accuracy* = share of linked names (overlapping a written name) that are right;
  *over-merging* = share of out-of-KG names (an unknown brand, an agency) linked to an existing
  entity instead of a new Concept or nothing.
- **Provenance**: of the accepted triples that are true, the share whose cited span overlaps a
  sentence of that document that states the fact.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore
from loaders.world.layout import WorldDir
from mining.pipeline.builddir import BuildDir
from mining.pipeline.evaluate import SYMMETRIC, Triple, TruthKG, prf

Span = tuple[str, int, int]  # document id, start, end


@dataclass
class DocumentTruth:
    triples: TruthKG = field(default_factory=TruthKG)
    where: dict[Triple, list[Span]] = field(default_factory=dict)  # stating sentences
    mentions: pd.DataFrame = field(default_factory=pd.DataFrame)

    def within(self, docs: set[str]) -> DocumentTruth:
        """The truth of the documents ``docs`` only (a build may mine a part of a world's documents)."""
        where = {t: [s for s in spans if s[0] in docs] for t, spans in self.where.items()}
        where = {t: spans for t, spans in where.items() if spans}
        return DocumentTruth(TruthKG(set(where)), where, self.mentions[self.mentions["doc"].isin(docs)])

    @classmethod
    def from_world(cls, world_dir: Path) -> DocumentTruth:
        folder = WorldDir(world_dir).hidden_for_evaluation("documents")
        if not (folder / "statements.parquet").exists():
            raise InputError(
                f"{world_dir} has no hidden/documents truth; generate the world with this mokg "
                "(`mokg world generate`) or pass the world the documents came from with --world"
            )
        truth = cls(mentions=pd.read_parquet(folder / "mentions.parquet"))
        where: dict[Triple, list[Span]] = defaultdict(list)
        for r in cast(
            list[dict[str, Any]], pd.read_parquet(folder / "statements.parquet").to_dict("records")
        ):
            head, tail = str(r["head"]).split(":", 1)[1], str(r["tail"]).split(":", 1)[1]
            span = (str(r["doc"]), int(r["start"]), int(r["end"]))
            where[canonical((str(r["relation"]), head, tail))].append(span)
        truth.where = dict(where)
        truth.triples = TruthKG(set(where))
        return truth


def canonical(triple: Triple) -> Triple:
    """A symmetric relation's pair in one order (so either direction counts once)."""
    rel, head, tail = triple
    return (rel, *sorted((head, tail))) if rel in SYMMETRIC else triple  # type: ignore[return-value]


def _chunks(store: GraphStore) -> dict[str, tuple[str, int]]:
    table = store.node_table("Chunk", ["document", "char_start"])
    return {
        str(c): (str(d), int(s))
        for c, d, s in zip(table["id"], table["document"], table["char_start"], strict=True)
    }


def accepted_rows(build: BuildDir) -> list[dict[str, Any]]:
    return [r for r in build.candidate_rows() if r["accepted"]]


def triple_scores(rows: list[dict[str, Any]], truth: DocumentTruth) -> pd.DataFrame:
    mined = {canonical((r["relation"], r["head"], r["tail"])) for r in rows}
    heads = {h for _, h, _ in truth.triples.triples}
    return prf(mined, truth.triples, heads)


def provenance(
    rows: list[dict[str, Any]], truth: DocumentTruth, chunks: dict[str, tuple[str, int]]
) -> dict[str, float]:
    """Share of true accepted candidates whose cited span overlaps a stating sentence."""
    true = [r for r in rows if canonical((r["relation"], r["head"], r["tail"])) in truth.where]
    right = 0
    for r in true:
        stated = truth.where[canonical((r["relation"], r["head"], r["tail"]))]
        cited = [
            (chunks[c][0], chunks[c][1] + s, chunks[c][1] + e)
            for c, s, e in r.get("spans", [])
            if c in chunks
        ]
        right += any(d == sd and s < se and ss < e for d, s, e in cited for sd, ss, se in stated)
    return {"true_triples": len(true), "cited_correctly": right, "share": right / len(true) if true else 0.0}


def _linked(
    store: GraphStore, chunks: dict[str, tuple[str, int]], docs: set[str]
) -> list[tuple[str, int, int, str]]:
    """(document, start, end, "Label:id") of every linked mention in ``docs``."""
    out = []
    for head, tail in next(r for r in SCHEMA.rel_types.values() if r.name == "MENTIONS").endpoints:
        if head != "Chunk":
            continue
        edges = store.edge_table(("Chunk", "MENTIONS", tail), ["spans"])
        for c, node, spans in zip(edges["head"], edges["tail"], edges["spans"], strict=True):
            doc, base = chunks.get(str(c), ("", 0))
            if doc in docs:
                out += [(doc, base + s, base + e, f"{tail}:{node}") for s, e in json.loads(spans or "[]")]
    return out


def linking(store: GraphStore, truth: DocumentTruth, docs: set[str]) -> dict[str, float]:
    chunks = _chunks(store)
    by_doc: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for doc, s, e, ref in _linked(store, chunks, docs):
        by_doc[doc].append((s, e, ref))
    known = unknown = right = linked_known = merged = 0
    for m in cast(list[dict[str, Any]], truth.mentions[truth.mentions["doc"].isin(docs)].to_dict("records")):
        hits = [ref for s, e, ref in by_doc.get(m["doc"], []) if s < m["end"] and m["start"] < e]
        if m["entity"]:
            known += 1
            linked_known += bool(hits)
            right += f"{m['label']}:{m['entity']}" in hits
        else:
            unknown += 1
            merged += any(not ref.startswith("Concept:") for ref in hits)
    return {
        "kg_mentions": known,
        "recall": right / known if known else 0.0,
        "accuracy": right / linked_known if linked_known else 0.0,
        "out_of_kg_mentions": unknown,
        "over_merged": merged / unknown if unknown else 0.0,
    }


@dataclass
class DocumentScores:
    triples: pd.DataFrame
    linking: dict[str, float]
    provenance: dict[str, float]


def evaluate_documents(store: GraphStore, build: BuildDir, world: Path) -> DocumentScores:
    """The three scores of a document build (its work directory) against ``world``'s truth, over
    the documents the build read."""
    if not build.is_documents():
        raise InputError(f"{build.path} is not a document build; score it with `mokg eval mining` alone")
    chunks = _chunks(store)
    rows = accepted_rows(build)
    truth = DocumentTruth.from_world(world)
    docs = _build_documents(build, chunks) & set(truth.mentions["doc"])
    truth = truth.within(docs)
    triples = triple_scores(rows, truth).round(3)
    return DocumentScores(triples, linking(store, truth, docs), provenance(rows, truth, chunks))


def _build_documents(build: BuildDir, chunks: dict[str, tuple[str, int]]) -> set[str]:
    """The documents a build read (its checkpoint lists the chunks it mined)."""
    heads = build.load_raw().get("heads", {})
    return {chunks[c][0] for c in heads if c in chunks}
