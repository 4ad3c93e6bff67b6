"""Audience-targeting benchmark (run: `python -m bench.audience --help`).

On one store (default: the demo world ingested with its ground-truth KG into a temp store; or
``--store PATH`` for an existing one, e.g. the benchmark world's), for one campaign (default: the
one with the largest budget):

1. fit time once, then the time to score *every* user for the campaign (median of ``--repeats``)
   for each method: ``rule`` (the Cypher query), ``ppr`` (sparse power iteration), ``gnn`` (a
   fitted heterogeneous GraphSAGE: one matrix product), ``lookalike`` and ``density`` (seeded with
   ``--seed-users`` random users of a synthetic earlier campaign: timing only; their fit time adds
   the GNN's to their own: density's population density);
2. the ratio of GNN scoring time to Cypher rule scoring time in the same run;
3. per method, the end-to-end export of a ``--export-users`` (100k) audience with the fitted
   method: scoring, guards, salted hashing, the Parquet file and manifest written atomically, the
   audit line; plus the export path alone on a fixed ranking (``synthetic``). When the store has
   fewer users than that, the synthetic ranking is padded with ids ``bench_u…`` and the per-method
   exports are skipped;
4. the process's peak RSS after each method (cumulative; a method's model is dropped after its
   measurements, except the GNN that lookalike and density reuse).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
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


SEEDED = {"lookalike", "density"}  # seed expansion over the fitted GNN's user embeddings


def _lookalike(
    gnn: Any, users: list[str], campaign: str, n_seed: int, seed: int, method: str = "lookalike"
) -> Any:
    """``method`` (lookalike or density) seeded by a synthetic earlier campaign of random users."""
    from gnn.audience.density import DensityTargeter
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
    return (LookalikeTargeter if method == "lookalike" else DensityTargeter)(log, gnn)


def peak_rss_gb() -> float:
    """The process's peak resident set size so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def method_config(method: str, args: argparse.Namespace) -> Any:
    from gnn.audience.gnn import GNNConfig

    if method != "gnn":
        return None
    return GNNConfig(
        seed=args.seed,
        features=not args.no_features,
        epochs=args.gnn_epochs,
        batch_users=args.batch_users,
        label_users=args.label_users,
    )


def bench_methods(
    store: GraphStore, campaign: str, args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, Any]]:
    from gnn.audience.base import make_targeter

    out: dict[str, dict[str, Any]] = {}
    gnn: Any = None
    n_users = len(store.node_table("User"))
    for method in args.methods:
        if method in SEEDED:
            if gnn is None:
                raise SystemExit(f"{method} reuses the GNN: list gnn before {method} in --methods")
            targeter = _lookalike(gnn, list(gnn.ids["User"]), campaign, args.seed_users, args.seed, method)
            fit_s, _ = timed(partial(targeter.fit, store), 1)
        else:
            fit_s, targeter = timed(partial(make_targeter(method).fit, store, method_config(method, args)), 1)
        score_s, ranked = timed(partial(targeter.score, campaign), args.repeats)
        row: dict[str, Any] = {"fit_s": fit_s, "score_s": score_s, "users": len(ranked)}
        if n_users >= args.export_users:
            row["export_s"] = bench_export(store, targeter, campaign, args.export_users, tmp)["export_s"]
        if method == "gnn":
            gnn = targeter
            row["info"] = {k: v for k, v in targeter.info.items() if k != "graph_version"}
        row["peak_rss_gb"] = peak_rss_gb()
        out[method] = row
        print(f"{method}: {row}", flush=True)
        del targeter, ranked
    for method in SEEDED & set(out):  # their fit includes the GNN's
        out[method]["fit_s"] += out["gnn"]["fit_s"]
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


def bench_export(store: GraphStore, targeter: Any, campaign: str, n: int, tmp: Path) -> dict[str, float]:
    """One hashed Parquet export of the top ``n`` users of ``targeter``, end to end (scoring included)."""
    from gnn.audience.export import ExportConfig, export_audience

    cfg = ExportConfig(
        campaign,
        n,
        targeter.name,
        tmp / "aud.parquet",
        hash_salt="bench-salt-0123456789",
        audit_log=tmp / "audit.jsonl",
        overwrite=True,
    )
    t0 = time.perf_counter()
    manifest = export_audience(store, targeter, None, cfg)
    return {"export_s": time.perf_counter() - t0, "users": float(manifest["count"])}


def bench_synthetic_export(
    store: GraphStore, campaign: str, n: int, tmp: Path, seed: int
) -> dict[str, float]:
    """The export path alone, on a fixed random ranking (padded to ``n`` users if the store has fewer)."""
    from gnn.audience.base import score_frame, store_users

    users = store_users(store)
    if len(users) < n:
        users = users + [f"bench_u{i:07d}" for i in range(n - len(users))]
    ranked = score_frame(users, np.random.default_rng(seed).random(len(users)))
    return bench_export(store, _Ranking(ranked), campaign, n, tmp)


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
    ap.add_argument("--methods", nargs="+", default=["rule", "ppr", "gnn", "lookalike", "density"])
    ap.add_argument("--gnn-epochs", type=int, default=150, help="GNN training steps")
    ap.add_argument("--batch-users", type=int, default=20_000, help="GNN users per training step")
    ap.add_argument("--label-users", type=int, default=200_000, help="GNN users with weak labels")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mokg-bench-audience-"))
    try:
        with _store(args, tmp) as store:
            budgets = store.node_table("Campaign", ["budget"]).sort_values(
                ["budget", "id"], ascending=[False, True]
            )
            campaign = args.campaign or str(budgets["id"].iloc[0])
            methods = bench_methods(store, campaign, args, tmp)
            export = bench_synthetic_export(store, campaign, args.export_users, tmp, args.seed)
            version = str(store.version())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {
        "command": "python -m bench.audience " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "store": str(args.store or f"{args.world} (+ truth KG: {not args.no_kg})"),
        "graph_version": version,
        "campaign": campaign,
        "methods": methods,
        "gnn_over_rule_score": (
            methods["gnn"]["score_s"] / methods["rule"]["score_s"]
            if {"gnn", "rule"} <= set(methods)
            else None
        ),
        "export": export,
        "peak_rss_gb": peak_rss_gb(),
    }
    _print(results, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def _print(r: dict[str, Any], repeats: int) -> None:
    print(f"store {r['store']}, graph {r['graph_version']}, campaign {r['campaign']}, seed {r['seed']}")
    n = int(r["export"]["users"])
    print(
        f"{'method':10} {'fit s':>9} {'score all users s':>18} {'users':>9} {f'export {n:,} s':>15} "
        f"{'peak RSS GB':>12}  (score: median of {repeats})"
    )
    for name, m in r["methods"].items():
        export = f"{m['export_s']:15.2f}" if "export_s" in m else f"{'-':>15}"
        print(
            f"{name:10} {m['fit_s']:9.1f} {m['score_s']:18.3f} {int(m['users']):9d} {export} "
            f"{m['peak_rss_gb']:12.2f}"
        )
    if r["gnn_over_rule_score"] is not None:
        print(f"GNN scoring / Cypher rule scoring: {r['gnn_over_rule_score']:.3f}x")
    e = r["export"]
    print(f"export path alone, {n:,} users (hashed, Parquet + manifest + audit): {e['export_s']:.3f} s")
    print(f"peak RSS of the run: {r['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
    main()
