"""The neo4j backend's Bolt write path with and without neo4j-rust-ext (`python -m bench.bolt --help`).

neo4j-rust-ext is Neo4j's drop-in Rust extension of the Python driver: the same package with the
PackStream codec (the encoding of every parameter and record on the wire) in Rust. The driver
uses it when ``neo4j._rust`` imports (``neo4j._codec.packstream.RUST_AVAILABLE``).

This starts ArcadeDB's Bolt server (``tests/support/arcadedb_server.py``, arcadedb-embedded) and
runs the same work in child processes, alternately without and with the extension (best of
``--repeats`` each, the order alternating so the server's warm-up is shared): the one with
it gets ``--rust-ext DIR`` first on its ``PYTHONPATH``, where ``DIR`` holds the driver and the
extension of the same version (``pip install --no-deps --target DIR neo4j==6.4.1
neo4j-rust-ext==6.4.1.0``); each child reports which codec it ran. The work, on an emptied
database: ``bulk_load`` of users, items and INTERACTED edges (all new: ``UNWIND … CREATE``
batches), ``upsert_edges`` of changed edges (the update path) and ``edge_table`` of every edge
(the read path). It prints rows/s of each (best of the runs), the driver process's CPU time per
row (the server is another process, so this is the client's share that the codec can change),
and the ratio with/without the extension.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from bench.synthetic import interactions

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "mokg-bench-pw"
DATABASE = "bench"
MEASURES = ("load", "update", "read")
T = TypeVar("T")


@contextmanager
def bolt_server(root: Path) -> Iterator[str]:
    """ArcadeDB with its Bolt plugin on 127.0.0.1 until the block ends; yields its URI."""
    from tests.support.arcadedb_server import bolt_server as serve

    with serve(root, PASSWORD, DATABASE) as uri:
        yield uri


def make_data(n_users: int, n_items: int, n_edges: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {"id": [f"u{i}" for i in range(n_users)], "name": [f"user {i}" for i in range(n_users)]}
    )
    items = pd.DataFrame({"id": [f"i{i}" for i in range(n_items)], "price": rng.gamma(2.0, 30.0, n_items)})
    return {"User": users, "Item": items, "INTERACTED": interactions(rng, n_users, n_items, n_edges)}


def timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """Wall seconds, this process's CPU seconds (the driver's share: the server is another process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def child(args: argparse.Namespace) -> dict[str, Any]:
    """The timed work in this process, on an emptied database; which codec the driver used."""
    import neo4j
    from neo4j._codec import packstream

    from graph.base import BaseStore
    from graph.store import StoreConfig, open_store

    data = make_data(args.users, args.items, args.edges, args.seed)
    config = StoreConfig(
        backend="neo4j",
        neo4j_uri=args.child,
        neo4j_user="root",
        neo4j_password=PASSWORD,
        neo4j_database=DATABASE,
    )
    store = open_store(config, create=True)
    cast(BaseStore, store)._in_write_tx(lambda ex: ex("MATCH (n) DETACH DELETE n", {}))
    run_id = store.start_run("bench")
    nodes = {"User": data["User"], "Item": data["Item"]}
    load = timed(
        lambda: store.bulk_load(run_id=run_id, nodes=nodes, edges={"INTERACTED": data["INTERACTED"]})
    )
    changed = data["INTERACTED"].head(args.updates)
    frame = changed.assign(confidence=0.5, ts=list(changed["ts"].dt.to_pydatetime()))
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    update = timed(lambda: store.upsert_edges("INTERACTED", rows, run_id=run_id))
    read = timed(
        lambda: store.edge_table(("User", "INTERACTED", "Item"), ["kind", "ts", "domain", "confidence"])
    )
    store.close()
    counts = {"load": sum(len(f) for f in data.values()), "update": len(rows), "read": len(read[2])}
    phases = {"load": load, "update": update, "read": read}
    return {
        "rust": bool(packstream.RUST_AVAILABLE),
        "driver": f"neo4j {neo4j.__version__} from {Path(neo4j.__file__).parent}",
        **{m: counts[m] / phases[m][0] for m in MEASURES},
        "client_cpu_us_per_row": {m: 1e6 * phases[m][1] / counts[m] for m in MEASURES},
        "seconds": {m: phases[m][0] for m in MEASURES},
    }


def run_child(uri: str, argv: list[str], rust_ext: Path | None) -> dict[str, Any]:
    path = [str(rust_ext)] if rust_ext else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    cmd = [sys.executable, "-m", "bench.bolt", *argv, "--child", uri]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the benchmark child failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if out["rust"] != (rust_ext is not None):
        want = "with" if rust_ext else "without"
        raise RuntimeError(f"the child meant to run {want} the Rust codec did not ({out['driver']})")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bolt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rust-ext", type=Path, required=False, help="folder with neo4j + neo4j-rust-ext installed"
    )
    ap.add_argument("--edges", type=int, default=20_000, help="INTERACTED edges (default 20,000)")
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--items", type=int, default=1_000)
    ap.add_argument("--updates", type=int, default=5_000, help="changed edges for the update path")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each, in alternating order (best kept)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first (the server's JIT warms up)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        out = child(args)
        print(json.dumps(out))
        return out
    if args.rust_ext is None:
        ap.error("--rust-ext DIR is required (pip install --no-deps --target DIR neo4j neo4j-rust-ext)")
    sizes = {"edges": args.edges, "users": args.users, "items": args.items, "updates": args.updates}
    passed = [x for k, v in {**sizes, "seed": args.seed}.items() for x in (f"--{k}", str(v))]
    runs: dict[str, list[dict[str, Any]]] = {"python": [], "rust": []}
    with tempfile.TemporaryDirectory(prefix="mokg-bolt-") as tmp, bolt_server(Path(tmp)) as uri:
        for _ in range(args.warmup):  # the server's JIT warms up (untimed)
            run_child(uri, passed, None)
        for i in range(args.repeats):  # the order alternates, so a drift in the server's speed is shared
            for mode in ("python", "rust") if i % 2 == 0 else ("rust", "python"):
                runs[mode].append(run_child(uri, passed, args.rust_ext if mode == "rust" else None))
    best = {mode: {m: max(r[m] for r in rs) for m in MEASURES} for mode, rs in runs.items()}
    cpu = {
        mode: {m: min(r["client_cpu_us_per_row"][m] for r in rs) for m in MEASURES}
        for mode, rs in runs.items()
    }
    results = {
        "rows": args.users + args.items + args.edges,
        "best_rows_per_s": best,
        "client_cpu": cpu,
        "runs": runs,
    }
    print(f"{args.users:,} users, {args.items:,} items, {args.edges:,} INTERACTED edges; ArcadeDB Bolt")
    print(f"{runs['python'][0]['driver']} / {runs['rust'][0]['driver']}")
    print(f"\n{'measure (best of ' + str(args.repeats) + ')':30s} {'python':>12s} {'rust ext':>12s}  ratio")
    for m in MEASURES:
        py, rs = best["python"][m], best["rust"][m]
        print(f"{m + ' rows/s':30s} {py:>12,.0f} {rs:>12,.0f}  {rs / py:.2f}x")
    for m in MEASURES:
        py, rs = cpu["python"][m], cpu["rust"][m]
        print(f"{m + ' client CPU µs/row':30s} {py:>12,.1f} {rs:>12,.1f}  {rs / py:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
