"""`mokg ingest DIR`: load a world's visible tables into the store in one run.

Only ``visible/`` is read (through :meth:`WorldDir.visible`). The hidden ground-truth KG is loaded
only when asked (``with_truth_kg=True``, for oracle experiments), marked with source
``world-truth``. Everything goes through :meth:`GraphStore.bulk_load`: validated first, then one
transaction, so a bad file leaves the store as it was, and re-ingesting the same world is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore, LoadReport
from graph.subgraph import EdgeKey
from loaders.world.layout import WorldDir

TRUTH_SOURCE = "world-truth"


@dataclass(frozen=True)
class WorldTables:
    nodes: dict[str, pd.DataFrame]
    edges: dict[EdgeKey, pd.DataFrame]

    def rows(self) -> int:
        return sum(len(f) for f in self.nodes.values()) + sum(len(f) for f in self.edges.values())


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def read_visible(world: WorldDir, progress: Callable[[str], None] | None = None) -> WorldTables:
    """The visible node and edge tables, checked against the schema's labels and relations."""
    world.manifest()
    nodes: dict[str, pd.DataFrame] = {}
    for label, path in world.node_files().items():
        SCHEMA.label(label)
        nodes[label] = _read(path)
        if progress:
            progress(path.name)
    edges: dict[EdgeKey, pd.DataFrame] = {}
    for key, path in world.edge_files().items():
        SCHEMA.endpoints(key[1], key[0], key[2])
        edges[key] = _read(path)
        if progress:
            progress(path.name)
    if not nodes:
        raise InputError(f"{world.root} has no node files under visible/nodes")
    return WorldTables(nodes, edges)


def visible_rows(directory: Path) -> int:
    """Rows ingestion will read (from the manifest, without opening the tables)."""
    files = WorldDir(directory).manifest()["files"]
    return sum(v["rows"] for k, v in files.items() if k.startswith(("visible/nodes/", "visible/edges/")))


def read_truth_kg(world: WorldDir) -> dict[EdgeKey, pd.DataFrame]:
    """The hidden ground-truth KG (evaluators and oracle runs only)."""
    return {k: _read(p).assign(source=TRUTH_SOURCE) for k, p in world.truth_kg_files().items()}


def ingest_world(
    store: GraphStore,
    directory: Path,
    *,
    with_truth_kg: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> LoadReport:
    """Load the world at ``directory`` under a new run; return what changed."""
    world = WorldDir(directory)
    tables = read_visible(world)
    edges = dict(tables.edges)
    if with_truth_kg:
        edges.update(read_truth_kg(world))
    cfg = world.manifest()["config"]
    note = f"world scale={cfg['scale']} seed={cfg['seed']}" + (" +truth-kg" if with_truth_kg else "")
    with store.run_context("ingest", note) as run_id:
        try:
            return store.bulk_load(run_id=run_id, nodes=tables.nodes, edges=edges, progress=progress)
        except InputError as exc:
            raise InputError(f"{_file_of(world, str(exc))}: {exc}") from None


def _file_of(world: WorldDir, message: str) -> str:
    """The Parquet file a store error message is about (its table name opens the message)."""
    from graph.base import edge_key_name

    for label, path in world.node_files().items():
        if message.startswith(f"{label} "):
            return str(path)
    for key, path in {**world.edge_files(), **world.truth_kg_files()}.items():
        if message.startswith(edge_key_name(key)):
            return str(path)
    return str(world.root)
