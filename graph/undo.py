"""Undoing a run (``GraphStore.delete_run``), on either backend, in one write transaction.

In order: the values the run changed on other runs' rows are put back where they are still what
it wrote (:func:`graph.changes.plan_restore`; otherwise kept and counted as a conflict), the edges
it removed come back from their before-images (:func:`graph.removal.restore_removed`), the edges
it created go, then its nodes that no other edge still uses, then the relation types it declared
that no other run's edges use; its Change rows, every table's content hash and the Run node go last.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from graph.changes import Target, is_removal, parse_target, plan_restore
from graph.declared import undeclare
from graph.removal import restore_removed
from graph.schema import KEY, Schema

if TYPE_CHECKING:
    from graph.base import BaseStore, Executor


def delete_run(store: BaseStore, run_id: str) -> dict[str, int]:
    """Undo ``run_id`` in ``store`` (see the module doc); the counts of what was done."""
    store._require_run(run_id)
    schema = store.refresh_schema()
    counts = dict.fromkeys(("edges_deleted", "nodes_deleted", "nodes_kept", "values_restored"), 0)
    counts.update(restore_conflicts=0, declarations_removed=0, declarations_kept=0)

    def work(ex: Executor) -> None:
        restore(store, ex, run_id, counts)
        delete_rows(store, ex, schema, run_id, counts)
        undeclare(ex, store._q, schema, run_id, counts, store._undeclare_pair)
        ex(store._q("delete_run_changes"), {"run_id": run_id})
        ex(store._q("forget_table_hashes"), {})
        ex(store._q("delete_run_node"), {"id": run_id})

    try:
        store._in_write_tx(work)
    finally:
        store._schema = None
    store._live_runs.discard(run_id)
    return counts


def delete_rows(store: BaseStore, ex: Executor, schema: Schema, run_id: str, counts: dict[str, int]) -> None:
    """The run's edges, then its nodes that no edge uses (the others are counted as kept)."""
    p = {"run_id": run_id}
    for rel in schema.rel_types.values():
        for h, t in rel.endpoints:
            slots = {"head": h, "rel": rel.name, "tail": t}
            counts["edges_deleted"] += int(ex(store._q("count_run_edges", **slots), p)["c"].iloc[0])
            ex(store._q("delete_run_edges", **slots), p)
    for label in schema.data_labels():
        before = int(ex(store._q("count_run_nodes", label=label), p)["c"].iloc[0])
        ex(store._q("delete_run_nodes", label=label), p)
        after = int(ex(store._q("count_run_nodes", label=label), p)["c"].iloc[0])
        counts["nodes_deleted"] += before - after
        counts["nodes_kept"] += after


def restore(store: BaseStore, ex: Executor, run_id: str, counts: dict[str, int]) -> None:
    """Put back what the run changed or removed on other runs' rows (its Change rows)."""
    changes = ex(store._q("run_changes"), {"run_id": run_id})
    if not len(changes):
        return
    for name, group in changes.groupby("target"):
        target = parse_target(str(name))
        keys = pd.DataFrame([key_row(target, k) for k in group["key"]])
        current = store._stored(ex, target, keys)
        gone = group["after"].map(is_removal).to_numpy(dtype=bool)
        if gone.any() and not isinstance(target, str):
            back, kept = restore_removed(store, ex, target, group[gone], current, run_id)
            counts["values_restored"] += back
            counts["restore_conflicts"] += kept
            group = group[~gone]
        plan = plan_restore(target, group, current, store.schema)
        for frame in plan.frames:
            store._update(ex, target, frame, assign=True)
        counts["values_restored"] += plan.restored
        counts["restore_conflicts"] += plan.conflicts


def key_row(target: Target, key_text: str) -> dict[str, str]:
    """A Change row's JSON key as the key columns of its target."""
    key = json.loads(key_text)
    return {KEY: key} if isinstance(target, str) else {"head": key[0], "tail": key[1]}
