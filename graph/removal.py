"""Removing edges inside a run, so that deleting the run puts them back exactly.

:meth:`BaseStore.remove_edges <graph.base.BaseStore.remove_edges>` reads the whole stored rows of
the edges, writes one ``Change`` row per edge another run created (``before``: every property,
``run_id`` and ``created_at`` included; ``after``: :data:`graph.changes.REMOVED`), then deletes
the edges, all in the run's write transaction. ``delete_run`` calls :func:`restore_removed` before
it deletes the run's own rows: an edge that is gone is created again from its before-image (the
store's own insert, then every value assigned, so ``run_id``, ``created_at`` and ``source`` are the
original ones); an edge with that key written since by another run is kept and counted as a
conflict; one the deleted run wrote again itself gets its before-image back (so it is not deleted
with the run's rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from graph.changes import decode, removal_images, target_props
from graph.schema import EDGE_SYSTEM_PROPS, KEY, SCHEMA
from graph.subgraph import EdgeKey
from graph.tables import rows_table, typed_table
from graph.writes import write_table

if TYPE_CHECKING:
    from graph.base import BaseStore, Executor


def remove(
    store: BaseStore, ex: Executor, key: EdgeKey, pairs: Sequence[tuple[str, str]], run_id: str, now: datetime
) -> int:
    """Delete the stored edges of ``key`` between ``pairs`` (head, tail), their before-images
    recorded first; how many were removed (a pair with no edge is skipped)."""
    wanted = pd.DataFrame([(str(h), str(t)) for h, t in pairs], columns=["head", "tail"]).drop_duplicates()
    existing = store._stored(ex, key, wanted) if len(wanted) else wanted
    if not len(existing):
        return 0
    ids = pd.DataFrame({KEY: [r[KEY] for r in removal_images(run_id, key, existing, existing.iloc[:0])]})
    earlier = store._stored(ex, "Change", ids) if len(ids) else ids
    rows = removal_images(run_id, key, existing, earlier)
    if rows:
        table = rows_table(rows, SCHEMA.label("Change").props)
        write_table(store, ex, "Change", table, run_id, now, keep=False)
    found = existing[["head", "tail"]].astype(str).to_dict("records")
    ex(store._q("delete_edges_keyed", head=key[0], rel=key[1], tail=key[2]), {"rows": found})
    return len(found)


def restore_removed(
    store: BaseStore, ex: Executor, key: EdgeKey, changes: pd.DataFrame, current: pd.DataFrame, run_id: str
) -> tuple[int, int]:
    """Put back the removed edges of ``changes`` (Change rows of ``run_id`` with the removed
    marker); (values restored, conflicts): every property of an edge put back counts."""
    now = {(str(h), str(t)): str(r) for h, t, r in current[["head", "tail", "run_id"]].values}
    props = target_props(key, store.schema)
    back: list[dict[str, Any]] = []
    gone: list[bool] = []
    conflicts = restored = 0
    for key_text, before_text in changes[["key", "before"]].values:
        head, tail = json.loads(key_text)
        if now.get((head, tail), run_id) != run_id:
            conflicts += 1  # another run wrote this edge since: keep it
            continue
        before = {p: decode(v, props[p]) for p, v in json.loads(before_text).items() if p in props}
        back.append({"head": head, "tail": tail, **before})
        gone.append((head, tail) not in now)
        restored += len(before)
    if not back:
        return 0, conflicts
    frame = pd.DataFrame(back)
    _insert_missing(store, ex, key, frame[gone])
    store._update(ex, key, frame, assign=True)
    return restored, conflicts


def _insert_missing(store: BaseStore, ex: Executor, key: EdgeKey, frame: pd.DataFrame) -> None:
    """Create the edges of ``frame``, stamped with their own run and time (grouped by both)."""
    if not len(frame):
        return
    body = frame[[c for c in frame.columns if c not in EDGE_SYSTEM_PROPS]].reset_index(drop=True)
    stamps = [_stamp(r, c) for r, c in zip(frame["run_id"], frame["created_at"], strict=True)]
    for run, created in dict.fromkeys(stamps):
        rows = body[[s == (run, created) for s in stamps]].reset_index(drop=True)
        store._insert(ex, key, typed_table(rows, key, store.schema), run, created or datetime.now())


def _stamp(run: Any, created: Any) -> tuple[str, datetime | None]:
    return str(run), None if pd.isna(created) else pd.Timestamp(created).to_pydatetime()
