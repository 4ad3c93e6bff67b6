"""Content hashes of the table files an ingest loads, so loading an unchanged file again is a no-op.

A run that loads a table file records, in the same transaction as the table's rows, a
``TableHash`` row (a system label, schema v8): the table, the SHA-256 of the file's bytes (salted
with the schema version, the table's name and the ``source`` stamped on its rows), the row count
and the file. A crash before the commit leaves neither the rows nor the hash. Loading again, a
table is skipped when its hash equals the latest one recorded for it and nothing since can have
made the store differ from that file:

- no later run changed rows of the table that another run had created (the before-images the
  store keeps, ``Change``, name the tables each run changed);
- no ad-hoc Cypher write (a run of kind ``cypher``) came after it: it can SET or DELETE anything
  without a before-image;
- deleting any run forgets every hash (``BaseStore.delete_run``): a deleted run may have taken
  away or put back rows of the table, whichever run loaded it.

Not seen: a later run that rewrites rows it created itself (no before-image) which a loaded file
also holds, or a write that bypasses the store. ``force`` (``mokg ingest --force``) compares every
row, as a load without hashes does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from graph.changes import Target, target_name
from graph.runs import ADHOC_KIND
from graph.schema import SCHEMA
from graph.store import GraphStore

HASH_LABEL = "TableHash"
CHUNK = 1 << 20  # bytes read at a time while hashing


@dataclass(frozen=True)
class TableFile:
    """One Parquet file to load into one table; ``source``, if given, is stamped on every row."""

    target: Target  # a node label or an edge key (head, rel, tail)
    path: Path
    source: str | None = None

    @property
    def name(self) -> str:
        """The table as ``Change.target`` names it: the label, or HEAD-REL-TAIL."""
        return target_name(self.target)


def content_hash(table: TableFile) -> str:
    """SHA-256 of the file's bytes and of what decides how its rows are written."""
    digest = hashlib.sha256(f"mokg v{SCHEMA.version} {table.name} source={table.source}\n".encode())
    with table.path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unchanged(store: GraphStore, hashes: Mapping[str, str]) -> set[str]:
    """The tables (by name) whose file is the one the store last loaded into them and still holds."""
    recorded = store.run("table_hashes")
    if recorded.empty:
        return set()
    runs = store.runs()
    seq = {str(i): int(s) for i, s in zip(runs["id"], runs["seq"], strict=True)}
    latest: dict[str, tuple[int, str]] = {}  # table -> (seq of the run that loaded it, its hash)
    for target, sha, run_id in zip(recorded["target"], recorded["sha256"], recorded["run_id"], strict=True):
        at = seq.get(str(run_id))
        if at is not None and at > latest.get(str(target), (0, ""))[0]:
            latest[str(target)] = (at, str(sha))
    adhoc = max(
        (int(s) for k, s in zip(runs["kind"], runs["seq"], strict=True) if k == ADHOC_KIND), default=0
    )
    touched = _changed_since(store, seq)
    return {
        name
        for name, sha in hashes.items()
        if name in latest
        and latest[name][1] == sha
        and latest[name][0] > adhoc
        and latest[name][0] >= touched.get(name, 0)
    }


def _changed_since(store: GraphStore, seq: Mapping[str, int]) -> dict[str, int]:
    """For each table, the latest run (by sequence number) that changed rows another run created."""
    changed = store.run("changed_tables")
    latest: dict[str, int] = {}
    if changed.empty:
        return latest
    for target, run_id in zip(changed["target"], changed["run_id"], strict=True):
        at = seq.get(str(run_id), 0)
        latest[str(target)] = max(latest.get(str(target), 0), at)
    return latest


def hash_rows(
    run_id: str, tables: Sequence[TableFile], hashes: Mapping[str, str], rows: Mapping[str, int]
) -> pd.DataFrame:
    """The ``TableHash`` rows a run writes with the tables it loads (one per table, keyed by run)."""
    return pd.DataFrame(
        {
            "id": [f"{run_id}:{t.name}" for t in tables],
            "target": [t.name for t in tables],
            "sha256": [hashes[t.name] for t in tables],
            "rows": [rows[t.name] for t in tables],
            "file": [str(t.path) for t in tables],
        }
    )
