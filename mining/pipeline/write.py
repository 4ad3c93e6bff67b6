"""Stage 4: accepted triples into the store, with provenance, in one transaction per round.

Each edge carries ``confidence`` (the aggregation score), ``vote`` and ``relatedness`` (its two
parts), ``source`` = the run id, and ``evidence``: JSON with the prompt ids, the samples, the
votes, the surface forms the LLM used and the round. New ``Concept`` nodes (tails that resolved
to no store entity where the schema allows one) are written in the same transaction. Writes go
through ``bulk_load``, a MERGE on (head, type, tail): rerunning a round changes nothing.

A triple that is already in the graph from another run (a dataset's category tree, an earlier
mining run) is a confirmation: it is counted but not rewritten, so mining never overwrites the
confidence or provenance of what another source stated.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

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


def _known_elsewhere(store: GraphStore, key: EdgeKey, run_id: str) -> set[tuple[str, str]]:
    edges = store.edge_table(key, ["run_id"])
    if not len(edges):
        return set()
    other = edges[edges["run_id"] != run_id]
    return set(zip(other["head"], other["tail"], strict=True))


def write_accepted(store: GraphStore, run_id: str, accepted: Sequence[Candidate]) -> dict[str, int]:
    """Write ``accepted`` (and their new Concept tails) under ``run_id``; returns edges per relation
    written, plus ``confirmed`` for triples another run had already stated."""
    rows: dict[EdgeKey, list[dict[str, object]]] = defaultdict(list)
    concepts: dict[str, dict[str, object]] = {}
    for cand in sorted(accepted, key=lambda c: c.key):
        if cand.tail.new:
            concepts[cand.tail.id] = {"id": cand.tail.id, "name": cand.tail.name, "source": run_id}
        rows[(cand.head.type, cand.relation, cand.tail.type)].append(
            {
                "head": cand.head.id,
                "tail": cand.tail.id,
                "confidence": round(cand.confidence, 6),
                "vote": round(cand.vote, 6),
                "relatedness": round(cand.relatedness, 6),
                "evidence": evidence(cand),
                "source": run_id,
            }
        )
    out: dict[str, int] = defaultdict(int)
    edges = {}
    for key, r in rows.items():
        frame = pd.DataFrame(r).drop_duplicates(["head", "tail"], keep="last")
        known = _known_elsewhere(store, key, run_id)
        mask = [(h, t) not in known for h, t in zip(frame["head"], frame["tail"], strict=True)]
        out["confirmed"] += len(frame) - sum(mask)
        if any(mask):
            edges[key] = frame[mask]
    if not edges:
        return dict(out)
    nodes = {"Concept": pd.DataFrame(list(concepts.values()))} if concepts else {}
    store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
    for (_, rel, _), frame in edges.items():
        out[rel] += len(frame)
    return dict(out)
