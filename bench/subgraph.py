"""Subgraph-out benchmark (run: `python -m bench.subgraph --help`).

Times the store → ``HeteroData`` path the GNNs read (:func:`loaders.pyg.build_graph_data`, no
text features) for node types User, Item, Category, Brand and edge types INTERACTED, BELONGS_TO,
MADE_BY, SUBCATEGORY_OF, against a baseline that reads the same world's Parquet files with pyarrow
and builds the same ``HeteroData`` directly (sorted ids → row indices → ``edge_index``). Each side
runs ``--repeats`` times (default 3); the medians and their ratio are printed. Target (the
"subgraphs out" issue): store path ≤ 2x the Parquet baseline.

World layout read here (see :mod:`loaders.world.layout`): ``DIR/visible/nodes/{Label}.parquet``
with an ``id`` column and ``DIR/visible/edges/{Head}__{REL}__{Tail}.parquet`` with ``head``,
``tail`` (+ properties). ``--make-synthetic N_USERS N_ITEMS N_EDGES`` writes such a world and
ingests it into ``--store`` with ``bulk_load`` first, so the benchmark runs standalone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.synthetic import interactions
from graph.store import StoreConfig, open_store
from graph.subgraph import EdgeKey
from loaders.world.layout import edge_file

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

NODE_TYPES = ("User", "Item", "Category", "Brand")
EDGE_TYPES: tuple[EdgeKey, ...] = (
    ("User", "INTERACTED", "Item"),
    ("Item", "BELONGS_TO", "Category"),
    ("Item", "MADE_BY", "Brand"),
    ("Category", "SUBCATEGORY_OF", "Category"),
)


def make_world(n_users: int, n_items: int, n_edges: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Node and edge frames of a synthetic catalogue world; (user, item) pairs are unique."""
    rng = np.random.default_rng(seed)
    n_cats, n_brands = max(4, n_items // 200), max(2, n_items // 100)
    users = pd.DataFrame({"id": [f"u{i}" for i in range(n_users)]})
    items = pd.DataFrame(
        {"id": [f"i{i}" for i in range(n_items)], "title": [f"item {i}" for i in range(n_items)]}
    )
    cats = pd.DataFrame({"id": [f"c{i}" for i in range(n_cats)], "level": np.minimum(np.arange(n_cats), 1)})
    brands = pd.DataFrame({"id": [f"b{i}" for i in range(n_brands)]})
    inter = interactions(rng, n_users, n_items, n_edges)
    leaf = rng.integers(1, n_cats, n_items)
    return {
        "User": users,
        "Item": items,
        "Category": cats,
        "Brand": brands,
        "INTERACTED": inter,
        "BELONGS_TO": pd.DataFrame({"head": items["id"], "tail": [f"c{x}" for x in leaf]}),
        "MADE_BY": pd.DataFrame(
            {"head": items["id"], "tail": [f"b{x}" for x in rng.integers(0, n_brands, n_items)]}
        ),
        "SUBCATEGORY_OF": pd.DataFrame({"head": cats["id"][1:], "tail": "c0"}),
    }


def write_world(frames: dict[str, pd.DataFrame], world: Path) -> None:
    (world / "visible" / "nodes").mkdir(parents=True, exist_ok=True)
    (world / "visible" / "edges").mkdir(parents=True, exist_ok=True)
    for label in NODE_TYPES:
        frames[label].to_parquet(world / "visible" / "nodes" / f"{label}.parquet", index=False)
    for key in EDGE_TYPES:
        frames[key[1]].to_parquet(world / "visible" / "edges" / edge_file(key), index=False)


def ingest_world(world: Path, store_path: Path) -> None:
    """Load the world's node and edge files for the benchmarked types into a new embedded store."""
    with open_store(StoreConfig(path=store_path), create=True) as store:
        run_id = store.start_run("bench")
        nodes = {x: pd.read_parquet(world / "visible" / "nodes" / f"{x}.parquet") for x in NODE_TYPES}
        edges = {k: pd.read_parquet(world / "visible" / "edges" / edge_file(k)) for k in EDGE_TYPES}
        store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
        store.finish_run(run_id)


def parquet_heterodata(world: Path) -> HeteroData:
    """The baseline: the same HeteroData straight from Parquet (ids sorted per label)."""
    import pyarrow.parquet as pq
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    index: dict[str, pd.Index] = {}
    for label in NODE_TYPES:
        ids = pq.read_table(world / "visible" / "nodes" / f"{label}.parquet", columns=["id"])
        index[label] = pd.Index(np.sort(ids.column("id").to_numpy(zero_copy_only=False)))
        data[label].num_nodes = len(index[label])
        data[label].node_id = index[label].tolist()
    for key in EDGE_TYPES:
        path = world / "visible" / "edges" / edge_file(key)
        cols = [c for c in ("head", "tail", "confidence") if c in pq.read_schema(path).names]
        table = pq.read_table(path, columns=cols)
        head = index[key[0]].get_indexer(table.column("head").to_numpy(zero_copy_only=False))
        tail = index[key[2]].get_indexer(table.column("tail").to_numpy(zero_copy_only=False))
        data[key].edge_index = torch.from_numpy(np.stack([head, tail]).astype(np.int64))
        conf = table.column("confidence").to_numpy() if "confidence" in cols else np.ones(len(head))
        data[key].edge_attr = torch.from_numpy(conf.astype(np.float32).reshape(-1, 1))
    return data


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def same_graph(a: HeteroData, b: HeteroData) -> None:
    """Assert equal node ids and equal edge sets per type (edge order may differ)."""
    for label in NODE_TYPES:
        assert list(a[label].node_id) == list(b[label].node_id), f"{label} node ids differ"
    for key in EDGE_TYPES:
        ea, eb = a[key].edge_index.numpy(), b[key].edge_index.numpy()
        assert ea.shape == eb.shape, f"{key}: {ea.shape[1]} edges from the store, {eb.shape[1]} from Parquet"
        sa, sb = np.lexsort(ea[::-1]), np.lexsort(eb[::-1])
        assert np.array_equal(ea[:, sa], eb[:, sb]), f"{key}: edge sets differ"


def run_bench(world: Path, store_path: Path, repeats: int) -> dict[str, Any]:
    from loaders.pyg import GraphDataConfig, build_graph_data

    config = GraphDataConfig(node_types=NODE_TYPES, edge_types=EDGE_TYPES, features=False)
    with open_store(StoreConfig(path=store_path)) as store:
        store_s, store_all, built = timed(lambda: build_graph_data(store, config), repeats)
    parquet_s, parquet_all, baseline = timed(lambda: parquet_heterodata(world), repeats)
    same_graph(built.data, baseline)
    edges = {"|".join(k): int(baseline[k].num_edges) for k in EDGE_TYPES}
    return {
        "store_s": store_s,
        "parquet_s": parquet_s,
        "ratio": store_s / parquet_s,
        "store_runs_s": store_all,
        "parquet_runs_s": parquet_all,
        "edges": edges,
        "nodes": {x: int(baseline[x].num_nodes) for x in NODE_TYPES},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.subgraph",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--world", type=Path, help="world directory (default with --make-synthetic: a temp dir)")
    ap.add_argument("--store", type=Path, help="embedded store holding that world (default: WORLD/store)")
    ap.add_argument(
        "--make-synthetic",
        nargs=3,
        type=int,
        metavar=("N_USERS", "N_ITEMS", "N_EDGES"),
        help="write a synthetic world and ingest it into --store first",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    if args.make_synthetic is None and args.world is None:
        ap.error("give --world DIR (and --store PATH), or --make-synthetic N_USERS N_ITEMS N_EDGES")
    world: Path = args.world or Path(tempfile.mkdtemp(prefix="mokg-bench-subgraph-"))
    try:
        return _run(args, world, args.store or world / "store")
    finally:
        if args.world is None:
            shutil.rmtree(world, ignore_errors=True)


def _run(args: argparse.Namespace, world: Path, store_path: Path) -> dict[str, Any]:
    if args.make_synthetic:
        n_users, n_items, n_edges = args.make_synthetic
        t0 = time.perf_counter()
        write_world(make_world(n_users, n_items, n_edges, args.seed), world)
        ingest_world(world, store_path)
        print(f"synthetic world (seed {args.seed}) written and ingested in {time.perf_counter() - t0:.1f} s")
    results = run_bench(world, store_path, args.repeats)
    print(f"world {world}, store {store_path}")
    print(f"nodes {results['nodes']}\nedges {results['edges']}")
    print(f"store → HeteroData (build_graph_data) {results['store_s']:8.3f} s  (median of {args.repeats})")
    print(f"Parquet → HeteroData (pyarrow)       {results['parquet_s']:8.3f} s")
    print(f"ratio                                {results['ratio']:8.2f}x  (target <= 2x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
