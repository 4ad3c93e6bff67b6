"""Audience-targeting benchmark (run: `python -m bench.audience --help`).

On one store (default: the demo world ingested with its ground-truth KG into a temp store; or
``--store PATH`` for an existing one, e.g. the benchmark world's), for one campaign (default: the
one with the largest budget):

1. fit time once, then the time to score *every* user for the campaign (median of ``--repeats``)
   for each method: ``rule`` (the Cypher query), ``ppr`` (sparse power iteration), ``gnn`` (a
   fitted heterogeneous GraphSAGE: one matrix product), ``lookalike`` (seeded with
   ``--seed-users`` random users of a synthetic earlier campaign: timing only);
2. the ratio of GNN scoring time to Cypher rule scoring time in the same run;
3. end-to-end export of a 100k-user audience (``--export-users``): guards, salted hashing, the
   Parquet file and manifest written atomically, the audit line. When the store has fewer users the
   ranking is synthesised (ids ``bench_u…``) so the export path is timed at that size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graph.store import GraphStore, StoreConfig, open_store


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _store(args: argparse.Namespace, tmp: Path) -> GraphStore:
    if args.store is not None:
        return open_store(StoreConfig(path=args.store))
    from loaders.ingest import ingest_world

    store = open_store(StoreConfig(path=tmp / "store"), create=True)
    ingest_world(store, args.world, with_truth_kg=not args.no_kg)
    return store


def _lookalike(gnn: Any, users: list[str], campaign: str, n_seed: int, seed: int) -> Any:
    from gnn.audience.lookalike import ConversionLog, LookalikeTargeter

    rng = np.random.default_rng(seed)
    picked = rng.choice(users, size=min(n_seed, len(users)), replace=False)
    windows = pd.DataFrame(
        {
            "id": ["bench_past", campaign],
            "start": pd.to_datetime(["2000-01-01", "2000-03-01"]),
            "end": pd.to_datetime(["2000-01-31", "2000-03-31"]),
        }
    )
    log = ConversionLog(pd.DataFrame({"campaign": "bench_past", "user": picked}), windows)
    return LookalikeTargeter(log, gnn)


def bench_methods(store: GraphStore, campaign: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from gnn.audience.base import make_targeter
    from gnn.audience.gnn import GNNConfig

    out: dict[str, dict[str, float]] = {}
    fitted: dict[str, Any] = {}
    for method in ("rule", "ppr", "gnn"):
        config = GNNConfig(seed=args.seed, features=not args.no_features) if method == "gnn" else None
        t0 = time.perf_counter()
        fitted[method] = make_targeter(method).fit(store, config)
        fit_s = time.perf_counter() - t0
        score_s, ranked = timed(partial(fitted[method].score, campaign), args.repeats)
        out[method] = {"fit_s": fit_s, "score_s": score_s, "users": float(len(ranked))}
    users = list(fitted["gnn"].ids["User"])
    look = _lookalike(fitted["gnn"], users, campaign, args.seed_users, args.seed).fit(store)
    score_s, ranked = timed(lambda: look.score(campaign), args.repeats)
    out["lookalike"] = {"fit_s": out["gnn"]["fit_s"], "score_s": score_s, "users": float(len(ranked))}
    return out


class _Ranking:
    """A targeter stand-in that returns a fixed ranking (the export path is what is timed)."""

    name = "synthetic"

    def __init__(self, ranked: pd.DataFrame) -> None:
        self.ranked = ranked

    def fit(self, store: GraphStore, config: Any) -> _Ranking:
        return self

    def score(self, campaign: str) -> pd.DataFrame:
        return self.ranked

    def explain(self, user: str, campaign: str) -> list[Any]:
        return []


def bench_export(store: GraphStore, campaign: str, n: int, tmp: Path, seed: int) -> dict[str, float]:
    from gnn.audience.base import score_frame, store_users
    from gnn.audience.export import ExportConfig, export_audience

    users = store_users(store)
    if len(users) < n:
        users = users + [f"bench_u{i:07d}" for i in range(n - len(users))]
    scores = np.random.default_rng(seed).random(len(users))
    ranked = score_frame(users, scores)
    cfg = ExportConfig(
        campaign, n, "synthetic", tmp / "aud.parquet", hash_salt="bench", audit_log=tmp / "audit.jsonl"
    )
    t0 = time.perf_counter()
    manifest = export_audience(store, _Ranking(ranked), None, cfg)
    return {"export_s": time.perf_counter() - t0, "users": float(manifest["count"])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.audience",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--world", type=Path, default=Path("mokg-data/world-demo"), help="world to ingest")
    ap.add_argument("--store", type=Path, default=None, help="use this existing embedded store instead")
    ap.add_argument("--no-kg", action="store_true", help="ingest without the ground-truth KG")
    ap.add_argument("--campaign", default=None, help="campaign id (default: the largest budget)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-users", type=int, default=200, help="lookalike seed size")
    ap.add_argument("--export-users", type=int, default=100_000)
    ap.add_argument("--no-features", action="store_true", help="GNN without MiniLM text features")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mokg-bench-audience-"))
    try:
        store = _store(args, tmp)
        try:
            budgets = store.node_table("Campaign", ["budget"]).sort_values(
                ["budget", "id"], ascending=[False, True]
            )
            campaign = args.campaign or str(budgets["id"].iloc[0])
            methods = bench_methods(store, campaign, args)
            export = bench_export(store, campaign, args.export_users, tmp, args.seed)
            version = str(store.version())
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {
        "command": "python -m bench.audience " + " ".join(argv if argv is not None else []),
        "seed": args.seed,
        "store": str(args.store or f"{args.world} (+ truth KG: {not args.no_kg})"),
        "graph_version": version,
        "campaign": campaign,
        "methods": methods,
        "gnn_over_rule_score": methods["gnn"]["score_s"] / methods["rule"]["score_s"],
        "export": export,
    }
    _print(results, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def _print(r: dict[str, Any], repeats: int) -> None:
    print(f"store {r['store']}, graph {r['graph_version']}, campaign {r['campaign']}, seed {r['seed']}")
    print(f"{'method':10} {'fit s':>9} {'score all users s':>18} {'users':>9}  (score: median of {repeats})")
    for name, m in r["methods"].items():
        print(f"{name:10} {m['fit_s']:9.3f} {m['score_s']:18.4f} {int(m['users']):9d}")
    print(f"GNN scoring / Cypher rule scoring: {r['gnn_over_rule_score']:.3f}x")
    e = r["export"]
    print(f"export {int(e['users']):,} users (hashed, Parquet + manifest + audit): {e['export_s']:.3f} s")


if __name__ == "__main__":
    main()
