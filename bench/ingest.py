"""Ingest benchmark for the embedded store (run: `python -m bench.ingest --help`).

Writes one synthetic marketing graph (users, items, intents; INTERACTED and HAS_INTENT edges) to
Parquet, then loads the same files three ways, each into a fresh store, in one run:

1. raw LadybugDB ``COPY`` of the Parquet files (the baseline: no validation, no idempotence);
2. ``loaders.ingest.ingest_files`` (hashes the files, reads the Parquet, ``GraphStore.bulk_load``:
   validates, diffs against the store, COPYs), then the same files again: unchanged, so skipped by
   their content hashes (the no-op), and again with ``force`` (every row read and compared);
3. ``GraphStore.upsert_edges`` (rows as Python dicts, as a mining job would write them).

It prints rows/s and the ratio of each to raw COPY, the no-op re-ingest's time and its ratio to the
load, the forced re-run's, the rate of the update path (changed edges, batched MERGE), and p50/p95
of a 2-hop neighbourhood query over random seeds. Targets: bulk_load within 1.5x of raw COPY and
upsert_edges >= 20,000 edges/s (issue 2); a no-op re-ingest <= 0.2x the load (issue 21).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.synthetic import interactions
from graph.schema import SCHEMA
from graph.store import GraphStore, StoreConfig, open_store
from loaders.hashes import TableFile
from loaders.ingest import ingest_files

INTERACTED = ("User", "INTERACTED", "Item")
HAS_INTENT = ("User", "HAS_INTENT", "Intent")


def make_data(n_users: int, n_items: int, n_intents: int, n_edges: int, seed: int) -> dict[str, pd.DataFrame]:
    """Node and edge frames; (user, item) pairs are unique, item popularity follows a power law."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {"id": [f"u{i}" for i in range(n_users)], "name": [f"user {i}" for i in range(n_users)]}
    )
    items = pd.DataFrame({"id": [f"i{i}" for i in range(n_items)], "price": rng.gamma(2.0, 30.0, n_items)})
    intents = pd.DataFrame(
        {"id": [f"t{i}" for i in range(n_intents)], "name": [f"intent {i}" for i in range(n_intents)]}
    )
    inter = interactions(rng, n_users, n_items, n_edges)
    has_intent = pd.DataFrame(
        {
            "head": [f"u{i}" for i in range(n_users)],
            "tail": [f"t{x}" for x in rng.integers(0, n_intents, n_users)],
            "confidence": rng.uniform(0.3, 1.0, n_users),
        }
    )
    return {"User": users, "Item": items, "Intent": intents, "INTERACTED": inter, "HAS_INTENT": has_intent}


def write_parquet(data: dict[str, pd.DataFrame], directory: Path) -> None:
    for name, df in data.items():
        df.to_parquet(directory / f"{name}.parquet", index=False)


def raw_layout(data: dict[str, pd.DataFrame], directory: Path) -> None:
    """The same data in the exact column layout LadybugDB's COPY wants (what a hand-written load does)."""
    now = datetime(2026, 1, 1)
    for label in ("User", "Item", "Intent"):
        df = data[label]
        full = pd.DataFrame({p.name: df.get(p.name) for p in SCHEMA.label(label).props})
        full = full.assign(source="bench", run_id="raw", created_at=now)
        full.to_parquet(directory / f"raw_{label}.parquet", index=False)
    for rel in ("INTERACTED", "HAS_INTENT"):
        df = data[rel]
        cols: dict[str, pd.Series] = {"from": df["head"], "to": df["tail"]}
        for p in SCHEMA.rel(rel).props:
            cols[p.name] = df[p.name] if p.name in df else pd.Series([None] * len(df))
        full = pd.DataFrame(cols).assign(source="bench", run_id="raw", created_at=now)
        if "count" in full:
            full["count"] = full["count"].astype("Int64")
        full.to_parquet(directory / f"raw_{rel}.parquet", index=False)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_raw_copy(directory: Path, store_dir: Path) -> float:
    store = open_store(StoreConfig(path=store_dir), create=True)
    conn = store._conn  # type: ignore[attr-defined]  # the raw LadybugDB connection

    def load() -> None:
        for label in ("User", "Item", "Intent"):
            conn.execute(f"COPY {label} FROM '{directory / f'raw_{label}.parquet'}'")
        conn.execute(f"COPY INTERACTED FROM '{directory / 'raw_INTERACTED.parquet'}'")
        conn.execute(f"COPY HAS_INTENT FROM '{directory / 'raw_HAS_INTENT.parquet'}'")

    seconds, _ = timed(load)
    store.close()
    return seconds


def read_frames(directory: Path) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    nodes = {x: pd.read_parquet(directory / f"{x}.parquet") for x in ("User", "Item", "Intent")}
    edges = {x: pd.read_parquet(directory / f"{x}.parquet") for x in ("INTERACTED", "HAS_INTENT")}
    return nodes, edges


def table_files(directory: Path) -> list[TableFile]:
    return [TableFile(x, directory / f"{x}.parquet") for x in ("User", "Item", "Intent")] + [
        TableFile(k, directory / f"{k[1]}.parquet") for k in (INTERACTED, HAS_INTENT)
    ]


def bench_bulk(directory: Path, store_dir: Path) -> tuple[dict[str, float], GraphStore]:
    """Load the files, then ingest them again unchanged (skipped by hash) and forced (compared)."""
    store = open_store(StoreConfig(path=store_dir), create=True)
    files = table_files(directory)
    load_s, first = timed(lambda: ingest_files(store, files, note="bench"))
    noop_s, again = timed(lambda: ingest_files(store, files, note="bench"))
    forced_s, forced = timed(lambda: ingest_files(store, files, note="bench", force=True))
    assert first.run_id and not again.run_id and forced.run_id, "the no-op re-ingest made a run"
    return {"load_s": load_s, "noop_s": noop_s, "forced_s": forced_s}, store


def bench_upsert(directory: Path, store_dir: Path, n_edges: int, n_updates: int) -> dict[str, float]:
    store = open_store(StoreConfig(path=store_dir), create=True)
    run_id = store.start_run("bench")
    nodes, edges = read_frames(directory)
    store.bulk_load(run_id=run_id, nodes=nodes)
    inter = edges["INTERACTED"].head(n_edges)
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in inter.assign(ts=list(inter["ts"].dt.to_pydatetime())).to_dict("records")
    ]
    insert_s, _ = timed(lambda: store.upsert_edges("INTERACTED", rows, run_id=run_id))
    changed = [dict(r, confidence=0.5) for r in rows[:n_updates]]
    update_s, _ = timed(lambda: store.upsert_edges("INTERACTED", changed, run_id=run_id))
    store.close()
    return {"insert_s": insert_s, "update_s": update_s, "rows": len(rows), "updates": len(changed)}


def bench_two_hop(store: GraphStore, n_users: int, n_seeds: int, seed: int) -> tuple[float, float]:
    from graph.progress import track

    rng = np.random.default_rng(seed)
    query = "MATCH (u:User {id: $id})-[*1..2]-(n) RETURN count(DISTINCT n) AS c"
    times = []
    for i in track(rng.integers(0, n_users, n_seeds), "2-hop queries", unit="queries"):
        t, _ = timed(partial(store.run, query, {"id": f"u{i}"}))
        times.append(t * 1000)
    qs = statistics.quantiles(times, n=20)
    return statistics.median(times), qs[18]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--edges", type=int, default=1_000_000, help="INTERACTED edges M (default 1,000,000)")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--intents", type=int, default=200)
    ap.add_argument(
        "--upsert-edges", type=int, default=None, help="edges for the upsert_edges run (default: all)"
    )
    ap.add_argument("--updates", type=int, default=20_000, help="changed edges for the update path")
    ap.add_argument("--seeds", type=int, default=1000, help="random seeds for the 2-hop query")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mokg-bench-"))
    try:
        data = make_data(args.users, args.items, args.intents, args.edges, args.seed)
        write_parquet(data, work)
        raw_layout(data, work)
        n_nodes = args.users + args.items + args.intents
        n_rows = n_nodes + len(data["INTERACTED"]) + len(data["HAS_INTENT"])
        print(
            f"data: {n_nodes:,} nodes, {len(data['INTERACTED']):,} INTERACTED + "
            f"{len(data['HAS_INTENT']):,} HAS_INTENT edges ({n_rows:,} rows), seed {args.seed}"
        )
        raw_s = bench_raw_copy(work, work / "raw")
        bulk, store = bench_bulk(work, work / "bulk")
        bulk_s = bulk["load_s"]
        p50, p95 = bench_two_hop(store, args.users, args.seeds, args.seed)
        store.close()
        up = bench_upsert(work, work / "upsert", args.upsert_edges or args.edges, args.updates)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "rows": n_rows,
        "raw_copy_rows_per_s": n_rows / raw_s,
        "bulk_load_rows_per_s": n_rows / bulk_s,
        "bulk_load_vs_raw_copy": bulk_s / raw_s,
        "ingest_load_s": bulk_s,
        "ingest_noop_s": bulk["noop_s"],
        "ingest_noop_vs_load": bulk["noop_s"] / bulk_s,
        "bulk_load_rerun_s": bulk["forced_s"],
        "upsert_edges_per_s": up["rows"] / up["insert_s"],
        "upsert_update_edges_per_s": up["updates"] / up["update_s"],
        "two_hop_p50_ms": p50,
        "two_hop_p95_ms": p95,
    }
    print(f"\n{'measure':32s} {'value':>14s}  target")
    print(
        f"{'raw LadybugDB COPY':32s} {results['raw_copy_rows_per_s']:>10,.0f} r/s  (baseline, {raw_s:.2f} s)"
    )
    print(f"{'bulk_load (ingest_files)':32s} {results['bulk_load_rows_per_s']:>10,.0f} r/s  ({bulk_s:.2f} s)")
    print(f"{'bulk_load time / raw COPY time':32s} {results['bulk_load_vs_raw_copy']:>13.2f}x  <= 1.5x")
    noop = results["ingest_noop_vs_load"]
    print(f"{'re-ingest unchanged (no-op)':32s} {bulk['noop_s']:>12.2f} s  ({noop:.3f}x the load; <= 0.2x)")
    print(f"{'re-ingest --force (every row)':32s} {bulk['forced_s']:>12.2f} s")
    print(f"{'upsert_edges (new edges)':32s} {results['upsert_edges_per_s']:>10,.0f} e/s  >= 20,000 e/s")
    print(f"{'upsert_edges (changed edges)':32s} {results['upsert_update_edges_per_s']:>10,.0f} e/s")
    print(f"{'2-hop neighbourhood p50 / p95':32s} {p50:>6.1f} / {p95:.1f} ms  ({args.seeds} seeds)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
