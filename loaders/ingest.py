"""`mokg ingest DIR`: load a world's visible tables into the store in one run.

Only ``visible/`` is read (through :meth:`WorldDir.visible`). The hidden ground-truth KG is loaded
only when asked (``with_truth_kg=True``, for oracle experiments), marked with source
``world-truth``. Everything goes through :meth:`GraphStore.bulk_load`: validated first, then one
transaction, so a bad file leaves the store as it was, and re-ingesting the same world is a no-op.

A file the store last loaded unchanged is not read at all: its content hash, recorded with its
rows (:mod:`loaders.hashes`), says so; when no file changed there is no run either.
``force=True`` (``mokg ingest --force``) reads and compares every row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore, LoadReport, TableReport
from graph.subgraph import EdgeKey
from graph.tables import edge_key_name
from loaders.hashes import HASH_LABEL, TableFile, content_hash, hash_rows, unchanged
from loaders.world.layout import WorldDir

TRUTH_SOURCE = "world-truth"


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def visible_rows(directory: Path) -> int:
    """Rows ingestion will read (from the manifest, without opening the tables)."""
    files = WorldDir(directory).manifest()["files"]
    return sum(v["rows"] for k, v in files.items() if k.startswith(("visible/nodes/", "visible/edges/")))


def read_truth_kg(world: WorldDir) -> dict[EdgeKey, pd.DataFrame]:
    """The hidden ground-truth KG (evaluators and oracle runs only)."""
    return {k: _read(p).assign(source=TRUTH_SOURCE) for k, p in world.truth_kg_files().items()}


def world_files(world: WorldDir, *, with_truth_kg: bool = False) -> list[TableFile]:
    """The world's visible table files (and the hidden KG's, marked ``world-truth``), checked
    against the schema's labels and relations; a truth file replaces a visible one of its edge key."""
    world.manifest()
    files: dict[str | EdgeKey, TableFile] = {}
    for label, path in world.node_files().items():
        files[SCHEMA.label(label).name] = TableFile(label, path)
    for key, path in world.edge_files().items():
        SCHEMA.endpoints(key[1], key[0], key[2])
        files[key] = TableFile(key, path)
    if with_truth_kg:
        files.update({k: TableFile(k, p, TRUTH_SOURCE) for k, p in world.truth_kg_files().items()})
    if not any(isinstance(k, str) for k in files):
        raise InputError(f"{world.root} has no node files under visible/nodes")
    return list(files.values())


def ingest_world(
    store: GraphStore,
    directory: Path,
    *,
    with_truth_kg: bool = False,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> LoadReport:
    """Load the world at ``directory`` under a new run; return what changed (``run_id`` empty:
    every file was the one the store last loaded, so nothing was read or written)."""
    world = WorldDir(directory)
    files = world_files(world, with_truth_kg=with_truth_kg)
    cfg = world.manifest()["config"]
    note = f"world scale={cfg['scale']} seed={cfg['seed']}" + (" +truth-kg" if with_truth_kg else "")
    try:
        return ingest_files(store, files, note=note, force=force, progress=progress)
    except InputError as exc:
        raise InputError(f"{_file_of(world, str(exc))}: {exc}") from None


def ingest_files(
    store: GraphStore,
    files: Sequence[TableFile],
    *,
    note: str = "",
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> LoadReport:
    """Load the table files that changed since the store last loaded them (all of them with
    ``force``) in one run of kind ``ingest``, their content hashes in the same transaction; no run
    when none changed. A skipped table is reported with all its rows unchanged."""
    hashes = {f.name: content_hash(f) for f in files}
    same = set() if force else unchanged(store, hashes)
    todo = [f for f in files if f.name not in same]
    report = LoadReport(run_id="")
    if todo:
        report = _load(store, todo, hashes, note, progress)
    for f in files:
        if f.name in same:
            n = pq.ParquetFile(f.path).metadata.num_rows
            table = f.target if isinstance(f.target, str) else edge_key_name(f.target)
            (report.nodes if isinstance(f.target, str) else report.edges)[table] = TableReport(n, 0, 0, n)
            if progress:
                progress(table, n)
    return report


def _load(
    store: GraphStore,
    files: Sequence[TableFile],
    hashes: Mapping[str, str],
    note: str,
    progress: Callable[[str, int], None] | None,
) -> LoadReport:
    nodes: dict[str, pd.DataFrame] = {}
    edges: dict[EdgeKey, pd.DataFrame] = {}
    for f in files:
        frame = _read(f.path) if f.source is None else _read(f.path).assign(source=f.source)
        if isinstance(f.target, str):
            nodes[f.target] = frame
        else:
            edges[f.target] = frame
    shown = None if progress is None else _without_hashes(progress)
    with store.run_context("ingest", note) as run_id:
        rows = {f.name: len(nodes[f.target] if isinstance(f.target, str) else edges[f.target]) for f in files}
        nodes[HASH_LABEL] = hash_rows(run_id, files, hashes, rows)
        report = store.bulk_load(run_id=run_id, nodes=nodes, edges=edges, progress=shown)
    report.nodes.pop(HASH_LABEL, None)
    return report


def _without_hashes(progress: Callable[[str, int], None]) -> Callable[[str, int], None]:
    def shown(name: str, rows: int) -> None:
        if name != HASH_LABEL:
            progress(name, rows)

    return shown


def _file_of(world: WorldDir, message: str) -> str:
    """The Parquet file a store error message is about (its table name opens the message)."""
    for label, path in world.node_files().items():
        if message.startswith(f"{label} "):
            return str(path)
    for key, path in {**world.edge_files(), **world.truth_kg_files()}.items():
        if message.startswith(edge_key_name(key)):
            return str(path)
    return str(world.root)
