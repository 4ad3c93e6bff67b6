"""Thoughts in the graph: every memory operation is a store write in a run.

TiM's operations (arXiv 2311.08719, §3.3) become writes of ``Thought`` nodes (schema v7) and
``MENTIONS`` edges from a thought to the KG nodes it is about (its user, intents, categories …):

- insert: new ``Thought`` rows (id = digest of user and text, so a repeat is an update, never a
  second node) with their unit-length vector (base64 float32) and their ``MENTIONS`` edges;
- forget and merge: the same rows again with ``status`` retired / merged, ``retired_at`` and
  ``retired_by``. A thought is never deleted by TiM's forget: the store records the before-image
  of every row a run changes (``Change``), so ``mokg runs delete RUN`` undoes an insert, a forget
  or a merge and puts the thoughts back as they were;
- a user's whole memory deleted on request (:func:`forget_user`): the named queries
  ``forget_thought_changes`` then ``forget_user_thoughts`` (``queries/library``) remove the
  thoughts, their edges and every before-image of them or of their edges. Each is one ad-hoc write; a
  killed forget is finished by running it again.

Vectors are embedded directly (never through the on-disk embedding cache), so a forgotten
thought leaves no copy of its text behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from consumers.memory.thought import Thought
from graph.errors import InputError
from graph.store import GraphStore
from loaders.features import text_vector, vector_text


@dataclass(frozen=True)
class Stored:
    """A user's thoughts as read back: thoughts and their vectors ``[N, dim]`` (row-aligned)."""

    thoughts: list[Thought]
    vectors: np.ndarray
    run_ids: list[str]


def write_thoughts(
    store: GraphStore, thoughts: Sequence[Thought], vectors: np.ndarray | None, *, run_id: str
) -> int:
    """Upsert ``thoughts`` (with ``vectors`` ``[N, dim]`` where given: inserts; None: status
    changes only) and the ``MENTIONS`` edges to the nodes that exist in the store. Returns the
    number of edges written."""
    if not thoughts:
        return 0
    rows = [t.row() for t in thoughts]
    if vectors is not None:
        if len(vectors) != len(rows):
            raise InputError(f"{len(rows)} thoughts but {len(vectors)} vectors; pass one vector per thought")
        for row, vec in zip(rows, vectors, strict=True):
            row["dim"] = len(vec)
            row["vector"] = vector_text(vec)
    store.upsert_nodes("Thought", rows, run_id=run_id)
    return _write_mentions(store, thoughts, run_id=run_id)


def _write_mentions(store: GraphStore, thoughts: Sequence[Thought], *, run_id: str) -> int:
    """``MENTIONS`` edges, grouped by the tail's label (mentions are ``LABEL:ID``); mentions of
    nodes the store does not hold are skipped."""
    by_label: dict[str, list[dict[str, str]]] = {}
    for t in thoughts:
        for mention in t.mentions:
            label, _, node = mention.partition(":")
            if node:
                by_label.setdefault(label, []).append({"head": t.id, "tail": node})
    written = 0
    for label, edges in sorted(by_label.items()):
        known = set(store.node_table(label)["id"].astype(str)) if edges else set()
        present = [e for e in edges if e["tail"] in known]
        if present:
            store.upsert_edges("MENTIONS", present, run_id=run_id, head="Thought", tail=label)
            written += len(present)
    return written


def read_thoughts(store: GraphStore, user: str) -> Stored:
    """Every thought of ``user`` (all statuses), newest first, with vectors and the runs that
    wrote them."""
    frame = store.run("user_thoughts", {"user_id": user})
    thoughts = [Thought.from_row(_clean(r)) for r in frame.to_dict("records")]
    vectors = [text_vector(v) for v in frame["vector"]] if len(frame) else []
    dim = len(vectors[0]) if vectors else 0
    matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    return Stored(thoughts, matrix, [str(r) for r in frame.get("run_id", pd.Series(dtype=str))])


def _clean(row: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def _mention_keys(store: GraphStore, ids: set[str]) -> list[str]:
    """The ``Change`` keys (``[thought, entity]``) of the ``MENTIONS`` edges of thoughts ``ids``."""
    keys = []
    for head, tail in store.schema.rel("MENTIONS").endpoints:
        if head == "Thought":
            edges = store.edge_table(("Thought", "MENTIONS", tail))
            keys += [
                json.dumps([str(h), str(t)])
                for h, t in zip(edges["head"], edges["tail"], strict=True)
                if h in ids
            ]
    return keys


def forget_user(store: GraphStore, user: str) -> int:
    """Delete ``user``'s memory from the store (thoughts, their edges, their before-images);
    returns the number of thoughts removed. Idempotent."""
    ids = [str(i) for i in store.run("user_thoughts", {"user_id": user})["id"]] if user else []
    if not ids:
        return 0
    keys = [json.dumps(i) for i in ids] + _mention_keys(store, set(ids))
    store.run("forget_thought_changes", {"keys": keys}, read_only=False)
    store.run("forget_user_thoughts", {"user_id": user}, read_only=False)
    return len(ids)
