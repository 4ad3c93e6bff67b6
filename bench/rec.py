"""PEACE benchmark (run: `python -m bench.rec --help`).

In one run, on the same graph (every domain's fit interactions of a leave-last-out split):

- training time per epoch of PEACE (:func:`gnn.rec.peace.train`, E8 with prototypes refreshed by
  k-means every epoch) and of PyG's ``LightGCN`` (:func:`gnn.rec.lightgcn.train_lightgcn`, BPR), with
  the same batch size; median over ``--epochs`` epochs and their ratio (target: PEACE ≤ 3×);
- full-ranking evaluation throughput (users/s: score every item of the domain, rank each held-out
  pair, :func:`gnn.rec.evaluate.evaluate_domain` over every domain) of both, and the ratio;
- the process's peak RSS after each phase (``ru_maxrss``; monotone, so LightGCN runs first);
- top-k serving from saved artefacts (:mod:`gnn.rec.serve`, numpy only): users/s in batches of
  ``--batch`` users and the p50 latency of one request (target: ≥ 5,000 users/s on 2 cores).

``--store PATH`` reads an existing store (read-only); ``--make-world SCALE`` generates a world of that
scale (seeded), ingests it with its truth KG into a temporary store first.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_store(scale: str, seed: int, root: Path) -> Path:
    from graph.store import StoreConfig, open_store
    from loaders.ingest import ingest_world
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world

    generate_world(world_config(scale, seed=seed), root / "world")
    store = open_store(StoreConfig(path=root / "graph"), create=True)
    try:
        ingest_world(store, root / "world", with_truth_kg=True)
    finally:
        store.close()
    return root / "graph"


def eval_throughput(model: Any, data: Any, max_users: int | None) -> tuple[float, int]:
    """(seconds, users) of a full-ranking evaluation over every domain (``max_users`` sampled test
    users per domain; None = all)."""
    from gnn.rec.evaluate import evaluate_domain

    start, users = time.perf_counter(), 0
    for domain in data.domains:
        users += int(evaluate_domain(model, data, domain, max_users=max_users)["users"])
    return time.perf_counter() - start, users


def bench_training(data: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Epoch times (sampled with ``--max-batches``, then scaled to a full epoch), eval throughput and
    peak RSS of LightGCN then PEACE, and the PEACE model the serving part exports."""
    from dataclasses import replace

    import torch

    from gnn.rec.baselines import BaselineConfig, local_items
    from gnn.rec.lightgcn import LightGCNRec, train_lightgcn
    from gnn.rec.peace import Peace, PeaceConfig, PeaceNet, refresh_prototypes, train

    epochs, seed, cap = args.epochs, args.seed, args.max_batches
    out: dict[str, Any] = {}
    users, cols, items = local_items(data, data.domains)
    base = BaselineConfig(epochs=epochs, seed=seed, batch_size=args.batch_size)
    n_batches = -(-len(users) // base.batch_size)
    timed = n_batches if cap is None else min(cap, n_batches)
    out |= {"batch_size": base.batch_size, "epoch_batches": n_batches, "timed_batches": timed}
    u, i, secs = train_lightgcn(data.n_users, len(items), users, cols, base, seed, max_batches=cap)
    out["lightgcn_epoch_s"] = statistics.median(secs) * n_batches / timed
    lgcn = LightGCNRec(base, joint=True)  # the trained embeddings, scored by the shared evaluator
    col = {int(g): c for c, g in enumerate(items)}
    lgcn.emb = {d: (u, i[[col[int(g)] for g in data.domain_items(d)]]) for d in data.domains}
    out["lightgcn_eval_s"], out["eval_users"] = eval_throughput(lgcn, data, args.eval_users)
    out["lightgcn_peak_rss_mb"] = peak_rss_mb()
    del lgcn, u, i

    cfg = PeaceConfig(seed=seed, batch_size=base.batch_size)
    net = PeaceNet(cfg, data)
    pool = torch.arange(data.n_items)
    secs = []
    for e in range(epochs):
        t0 = time.perf_counter()
        refresh_prototypes(net, pool, seed + e)  # what train() does once per epoch
        refresh = time.perf_counter() - t0
        t0 = time.perf_counter()
        train(net, data, data.domains, data.domains, 1, cfg.lr, seed + e, max_batches=cap)
        secs.append(refresh + (time.perf_counter() - t0 - refresh) * n_batches / timed)
    out["peace_epoch_s"] = statistics.median(secs)
    out["peace_refresh_s"] = refresh
    fit_cfg = replace(cfg, pretrain_epochs=args.fit_epochs, finetune_epochs=args.fit_epochs, max_batches=cap)
    model = Peace(fit_cfg)
    t0 = time.perf_counter()
    model.fit(data, ["finance", "travel", "health"])
    out["peace_fit_s"] = time.perf_counter() - t0
    model.cache.clear()
    out["peace_eval_s"], _ = eval_throughput(model, data, args.eval_users)
    out["peace_peak_rss_mb"] = peak_rss_mb()
    out["epoch_ratio"] = out["peace_epoch_s"] / out["lightgcn_epoch_s"]
    out["eval_users_per_s"] = {
        "PEACE": out["eval_users"] / out["peace_eval_s"],
        "LightGCN": out["eval_users"] / out["lightgcn_eval_s"],
    }
    out["eval_ratio"] = out["eval_users_per_s"]["PEACE"] / out["eval_users_per_s"]["LightGCN"]
    out["_model"] = model
    return out


def bench_serving(model: Any, data: Any, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Export the artefacts, load them, and time top-20 for every domain in batches of ``--batch``
    users (the first ``--serve-users`` users; all when unset) plus single requests."""
    from gnn.rec.serve import export_artefacts, load_artefacts, recommend, top_k

    t0 = time.perf_counter()
    art_dir = export_artefacts(model, data, root / "artefacts")
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    art = load_artefacts(art_dir)
    load_s = time.perf_counter() - t0
    n = min(len(art.user_index), args.serve_users or len(art.user_index))
    per_domain: dict[str, dict[str, float]] = {}
    for domain, arrays in art.domains.items():
        start = time.perf_counter()
        for lo in range(0, n, args.batch):
            top_k(arrays, np.arange(lo, min(lo + args.batch, n)), 20)
        ids = list(art.user_index)[:200]
        lat = []
        for uid in ids:
            s = time.perf_counter()
            recommend(art, uid, domain, 20)
            lat.append(time.perf_counter() - s)
        per_domain[domain] = {
            "items": len(arrays["item_ids"]),
            "users_per_s": n / (time.perf_counter() - start - sum(lat)),
            "p50_ms": 1000 * statistics.median(lat),
        }
    size = sum(f.stat().st_size for f in art_dir.iterdir()) / 2**20
    return {
        "serve_users": n,
        "serve": per_domain,
        "artefact_export_s": export_s,
        "artefact_load_s": load_s,
        "artefact_mb": size,
        "serve_peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.rec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--store", type=Path, help="embedded store to read (read-only)")
    ap.add_argument(
        "--make-world", choices=["demo", "small", "bench"], help="generate + ingest a world first"
    )
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs of each model")
    ap.add_argument("--batch-size", type=int, default=1024, help="training batch (both models)")
    ap.add_argument(
        "--max-batches",
        type=int,
        default=None,
        help="time this many batches per epoch and scale to a full epoch",
    )
    ap.add_argument(
        "--fit-epochs", type=int, default=2, help="PEACE pre-train/fine-tune epochs (eval, serving)"
    )
    ap.add_argument(
        "--eval-users", type=int, default=None, help="sampled test users per domain (default all)"
    )
    ap.add_argument("--batch", type=int, default=1024, help="users per serving batch")
    ap.add_argument("--serve-users", type=int, default=None, help="users to serve per domain (default all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-features", action="store_true", help="skip MiniLM text features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if (args.store is None) == (args.make_world is None):
        ap.error("give exactly one of --store PATH or --make-world SCALE")
    root = Path(tempfile.mkdtemp(prefix="mokg-bench-rec-"))
    try:
        return _run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    import torch

    from gnn.rec.data import RecDataConfig, load_rec_data
    from graph.store import StoreConfig, open_store

    torch.set_num_threads(args.threads)
    path = args.store or make_store(args.make_world, args.seed, root)
    store = open_store(StoreConfig(path=path))
    try:
        data = load_rec_data(store, RecDataConfig(features=not args.no_features))
    finally:
        store.close()
    r = bench_training(data, args)
    r |= bench_serving(r.pop("_model"), data, args, root)
    r |= {
        "users": data.n_users,
        "items": data.n_items,
        "fit_edges": len(data.fit_user),
        "kg_edges": int(data.kg_edges.shape[1]),
        "threads": args.threads,
    }
    print(f"store {path}: {r['users']:,} users, {r['items']:,} items, {r['fit_edges']:,} fit interactions")
    sampled = "" if r["timed_batches"] == r["epoch_batches"] else f", {r['timed_batches']} timed, scaled"
    print(
        f"epoch ({r['epoch_batches']:,} batches of {r['batch_size']}{sampled})  "
        f"PEACE {r['peace_epoch_s']:.3f} s "
        f"(k-means refresh {r['peace_refresh_s']:.3f} s)   LightGCN {r['lightgcn_epoch_s']:.3f} s   "
        f"ratio {r['epoch_ratio']:.2f}x (target <= 3x)"
    )
    u = r["eval_users_per_s"]
    print(
        f"full-rank eval ({r['eval_users']:,} users)  PEACE {u['PEACE']:,.0f} users/s   "
        f"LightGCN {u['LightGCN']:,.0f} users/s   ratio {r['eval_ratio']:.2f}x"
    )
    print(
        f"peak RSS    after LightGCN {r['lightgcn_peak_rss_mb']:.0f} MB   "
        f"after PEACE {r['peace_peak_rss_mb']:.0f} MB   after serving {r['serve_peak_rss_mb']:.0f} MB"
    )
    print(
        f"artefacts   export {r['artefact_export_s']:.1f} s, {r['artefact_mb']:.0f} MB, "
        f"load {r['artefact_load_s']:.2f} s; PEACE fit {r['peace_fit_s']:.1f} s"
    )
    for domain, d in r["serve"].items():
        print(
            f"serving     {domain:15s} {d['items']:>7,} items: {d['users_per_s']:,.0f} users/s "
            f"(top-20, {r['serve_users']:,} users in batches of {args.batch}; target >= 5,000)   "
            f"one request p50 {d['p50_ms']:.2f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return r


if __name__ == "__main__":
    main()
