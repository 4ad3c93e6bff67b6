"""Stage 4: accepted triples into the store, with provenance, in one transaction per round.

Each edge carries ``confidence`` (the aggregation score), ``vote`` and ``relatedness`` (its two
parts), ``source`` = the run id, and ``evidence``: JSON with the prompt ids, the samples, the
votes, the surface forms the LLM used and the round. New ``Concept`` nodes (tails that resolved
to no store entity where the schema allows one) are written in the same transaction. Writes go
through ``bulk_load``, a MERGE on (head, type, tail): rerunning a round changes nothing.

A triple that is already in the graph from another run (a dataset's category tree, an earlier
mining run) is a confirmation: it is counted but not rewritten, so mining never overwrites the
confidence or provenance of what another source stated. A confirmation found in a document adds
its chunk spans to the edge's ``spans`` (nothing else changes), so "where does this fact come
from" also finds the text that states it.

Facts mined from documents carry ``spans``: JSON ``[[chunk id, start, end], ...]``, the union over
every chunk that stated the triple (one candidate per chunk; the written edge keeps the best score).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

import pandas as pd

from graph.store import GraphStore
from graph.subgraph import EdgeKey
from mining.pipeline.types import Candidate


def evidence(cand: Candidate) -> str:
    return json.dumps(
        {
            "prompts": cand.prompt_ids,
            "responses": [f"{p}:{i}" for p in cand.prompt_ids for i in range(cand.samples)],
            "samples": cand.samples,
            "votes": cand.votes,
            "surfaces": sorted(cand.surfaces),
            "round": cand.round,
            "judge": cand.judge,
        },
        sort_keys=True,
    )


def _known_elsewhere(store: GraphStore, key: EdgeKey, run_id: str) -> pd.DataFrame:
    """Edges of ``key`` another run wrote: head, tail, confidence, spans."""
    edges = store.edge_table(key, ["run_id", "confidence", "spans"])
    return edges[edges["run_id"] != run_id] if len(edges) else edges


def spans_json(spans: Iterable[Sequence[object]]) -> str:
    return json.dumps(sorted([str(c), int(str(s)), int(str(e))] for c, s, e in spans))


def _row(cand: Candidate, spans: set[tuple[str, int, int]], run_id: str) -> dict[str, object]:
    row: dict[str, object] = {
        "head": cand.head.id,
        "tail": cand.tail.id,
        "confidence": round(cand.confidence, 6),
        "vote": round(cand.vote, 6),
        "relatedness": round(cand.relatedness, 6),
        "evidence": evidence(cand),
        "source": run_id,
    }
    if spans:
        row["spans"] = spans_json(spans)
    return row


def _best_per_triple(
    accepted: Sequence[Candidate],
) -> dict[EdgeKey, list[tuple[Candidate, set[tuple[str, int, int]]]]]:
    """One (best candidate, union of spans) per triple, grouped by edge key."""
    best: dict[tuple[str, str, str, str, str], tuple[Candidate, set[tuple[str, int, int]]]] = {}
    for cand in sorted(accepted, key=lambda c: (c.key, -c.confidence)):
        if cand.key in best:
            best[cand.key][1].update(cand.spans)
        else:
            best[cand.key] = (cand, set(cand.spans))
    rows: dict[EdgeKey, list[tuple[Candidate, set[tuple[str, int, int]]]]] = defaultdict(list)
    for cand, spans in best.values():
        rows[(cand.head.type, cand.relation, cand.tail.type)].append((cand, spans))
    return rows


def _with_old_spans(row: dict[str, Any], spans: set[tuple[str, int, int]]) -> dict[str, object]:
    old = json.loads(row["spans"]) if isinstance(row["spans"], str) and row["spans"] else []
    merged = {(str(c), int(s), int(e)) for c, s, e in old} | spans
    return {
        "head": row["head"],
        "tail": row["tail"],
        "confidence": row["confidence"],
        "spans": spans_json(merged),
    }


def write_accepted(store: GraphStore, run_id: str, accepted: Sequence[Candidate]) -> dict[str, int]:
    """Write ``accepted`` (and their new Concept tails) under ``run_id``; returns edges per relation
    written, plus ``confirmed`` for triples another run had already stated."""
    concepts = {
        c.tail.id: {"id": c.tail.id, "name": c.tail.name, "source": run_id} for c in accepted if c.tail.new
    }
    out: dict[str, int] = defaultdict(int)
    edges: dict[EdgeKey, pd.DataFrame] = {}
    for key, group in _best_per_triple(accepted).items():
        other = _known_elsewhere(store, key, run_id)
        known = {(r["head"], r["tail"]): r for r in cast(list[dict[str, Any]], other.to_dict("records"))}
        fresh = [_row(c, spans, run_id) for c, spans in group if (c.head.id, c.tail.id) not in known]
        cited = [
            _with_old_spans(known[c.head.id, c.tail.id], spans)
            for c, spans in group
            if (c.head.id, c.tail.id) in known and spans
        ]
        out["confirmed"] += len(group) - len(fresh)
        frame = pd.DataFrame(fresh + cited)
        if len(frame):
            edges[key] = frame
        out[key[1]] += len(fresh)
    if edges:
        nodes = {"Concept": pd.DataFrame(list(concepts.values()))} if concepts else {}
        store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
    return {k: v for k, v in out.items() if v or k == "confirmed"}
