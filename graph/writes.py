"""One validated table written inside a store's write transaction, as every load does it.

:meth:`BaseStore._load <graph.base.BaseStore._load>` (and :mod:`graph.removal`) call
:func:`write_table`: the incoming rows are compared with the stored ones by key; new rows are
inserted, changed rows updated (or, for a table loaded with ``keep``, only their missing properties
filled), unchanged rows skipped, and the before-image of every changed row that another run created
is written as a ``Change`` row in the same transaction (:mod:`graph.changes`), so
``delete_run`` can restore it. Only the backend's primitives ``_stored``, ``_insert`` and
``_update`` touch the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.changes import Target, before_images, fill_only, key_columns, merge_earlier, split
from graph.errors import InputError
from graph.schema import KEY, SCHEMA
from graph.store import TableReport
from graph.subgraph import EdgeKey
from graph.tables import edge_key_name, rows_table

if TYPE_CHECKING:
    from graph.base import BaseStore, Executor


def write_table(
    store: BaseStore, ex: Executor, target: Target, table: pa.Table, run_id: str, now: datetime, *, keep: bool
) -> TableReport:
    """New rows inserted; changed rows updated, their before-images recorded (or kept)."""
    keys = key_columns(target)
    incoming = table.to_pandas()
    existing = store._stored(ex, target, incoming[keys])
    is_new, changed = split(incoming, existing, keys)
    touched, kept = len(changed), 0
    if keep and len(changed):
        changed, clash = fill_only(changed, existing, keys)
        kept = int(clash.sum())
    if is_new.any():
        store._insert(ex, target, table.filter(pa.array(is_new)), run_id, now)
    if len(changed):
        record_changes(store, ex, run_id, target, changed, existing, now)
        store._update(ex, target, changed, assign=False)
    created = int(is_new.sum())
    return TableReport(len(incoming), created, len(changed), len(incoming) - created - touched, kept)


def record_changes(
    store: BaseStore,
    ex: Executor,
    run_id: str,
    target: Target,
    changed: pd.DataFrame,
    existing: pd.DataFrame,
    now: datetime,
) -> None:
    """Change rows for the changed rows another run created (merged with this run's earlier ones)."""
    rows = before_images(run_id, target, changed, existing)
    if not rows:
        return
    earlier = store._stored(ex, "Change", pd.DataFrame({KEY: [r[KEY] for r in rows]}))
    table = rows_table(merge_earlier(rows, earlier), SCHEMA.label("Change").props)
    write_table(store, ex, "Change", table, run_id, now, keep=False)


def check_endpoints(store: BaseStore, key: EdgeKey, table: pa.Table, nodes: dict[str, pa.Table]) -> None:
    """Every head and tail of ``table`` is a node loaded beside it or already stored; else a one-line
    error naming the first row whose endpoint is unknown."""
    for side, label in (("head", key[0]), ("tail", key[2])):
        ids = pc.unique(table.column(side)).to_pylist()
        incoming = set(nodes[label].column(KEY).to_pylist()) if label in nodes else set()
        wanted = [i for i in ids if i not in incoming]
        missing = set(wanted) - store._known_ids(label, wanted) if wanted else set()
        if missing:
            col = table.column(side).to_pylist()
            row = next(i for i, v in enumerate(col) if v in missing)
            raise InputError(
                f"{edge_key_name(key)} row {row}: {side} {col[row]!r} is not a {label} in the "
                f"store ({len(missing)} unknown {label} id(s) in all); write those nodes first "
                "or load them in the same bulk_load"
            )
