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


def eval_throughput(model: Any, data: Any) -> tuple[float, int]:
    """(seconds, users) of a full-ranking evaluation over every domain."""
    from gnn.rec.evaluate import evaluate_domain

    start, users = time.perf_counter(), 0
    for domain in data.domains:
        users += int(evaluate_domain(model, data, domain)["users"])
    return time.perf_counter() - start, users


def bench_training(data: Any, epochs: int, seed: int) -> dict[str, Any]:
    from dataclasses import replace

    from gnn.rec.baselines import BaselineConfig, local_items
    from gnn.rec.lightgcn import LightGCNRec, train_lightgcn
    from gnn.rec.peace import Peace, PeaceConfig, PeaceNet, train

    out: dict[str, Any] = {}
    users, cols, items = local_items(data, data.domains)
    base = BaselineConfig(epochs=epochs, seed=seed)
    _, _, secs = train_lightgcn(data.n_users, len(items), users, cols, base, seed)
    out["lightgcn_epoch_s"] = statistics.median(secs)
    lgcn = LightGCNRec(replace(base, epochs=2), joint=True)
    lgcn.fit(data, data.domains)
    out["lightgcn_eval_s"], out["eval_users"] = eval_throughput(lgcn, data)
    out["lightgcn_peak_rss_mb"] = peak_rss_mb()

    cfg = PeaceConfig(seed=seed, batch_size=base.batch_size)
    net = PeaceNet(cfg, data)
    secs = []
    for e in range(epochs):
        start = time.perf_counter()
        train(net, data, data.domains, data.domains, 1, cfg.lr, seed + e)
        secs.append(time.perf_counter() - start)
    out["peace_epoch_s"] = statistics.median(secs)
    model = Peace(replace(cfg, pretrain_epochs=2, finetune_epochs=1))
    model.fit(data, ["finance", "travel", "health"])
    model.cache.clear()
    out["peace_eval_s"], _ = eval_throughput(model, data)
    out["peace_peak_rss_mb"] = peak_rss_mb()
    out["epoch_ratio"] = out["peace_epoch_s"] / out["lightgcn_epoch_s"]
    out["eval_users_per_s"] = {
        "PEACE": out["eval_users"] / out["peace_eval_s"],
        "LightGCN": out["eval_users"] / out["lightgcn_eval_s"],
    }
    out["eval_ratio"] = out["eval_users_per_s"]["PEACE"] / out["eval_users_per_s"]["LightGCN"]
    out["_model"] = model
    return out


def bench_serving(model: Any, data: Any, batch: int, root: Path) -> dict[str, Any]:
    from gnn.rec.serve import export_artefacts, load_artefacts, recommend, top_k

    art_dir = export_artefacts(model, data, root / "artefacts")
    t0 = time.perf_counter()
    art = load_artefacts(art_dir)
    load_s = time.perf_counter() - t0
    domain = max(art.domains, key=lambda d: len(art.domains[d]["item_ids"]))
    arrays, n = art.domains[domain], len(art.user_index)
    start = time.perf_counter()
    for lo in range(0, n, batch):
        top_k(arrays, np.arange(lo, min(lo + batch, n)), 20)
    batch_s = time.perf_counter() - start
    ids = list(art.user_index)[:200]
    lat = []
    for u in ids:
        s = time.perf_counter()
        recommend(art, u, domain, 20)
        lat.append(time.perf_counter() - s)
    return {
        "serve_domain": domain,
        "serve_items": len(arrays["item_ids"]),
        "serve_users": n,
        "artefact_load_s": load_s,
        "serve_users_per_s": n / batch_s,
        "single_request_p50_ms": 1000 * statistics.median(lat),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        prog="python -m bench.rec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--store", type=Path, help="embedded store to read (read-only)")
    ap.add_argument(
        "--make-world", choices=["demo", "small", "bench"], help="generate + ingest a world first"
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024, help="users per serving batch")
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
    r = bench_training(data, args.epochs, args.seed)
    r |= bench_serving(r.pop("_model"), data, args.batch, root)
    r |= {
        "users": data.n_users,
        "items": data.n_items,
        "fit_edges": len(data.fit_user),
        "threads": args.threads,
    }
    print(f"store {path}: {r['users']:,} users, {r['items']:,} items, {r['fit_edges']:,} fit interactions")
    print(
        f"epoch       PEACE {r['peace_epoch_s']:.3f} s   LightGCN {r['lightgcn_epoch_s']:.3f} s   "
        f"ratio {r['epoch_ratio']:.2f}x (target <= 3x)"
    )
    u = r["eval_users_per_s"]
    print(
        f"full-rank eval ({r['eval_users']:,} users)  PEACE {u['PEACE']:,.0f} users/s   "
        f"LightGCN {u['LightGCN']:,.0f} users/s   ratio {r['eval_ratio']:.2f}x"
    )
    print(
        f"peak RSS    after LightGCN {r['lightgcn_peak_rss_mb']:.0f} MB   "
        f"after PEACE {r['peace_peak_rss_mb']:.0f} MB"
    )
    print(
        f"serving     {r['serve_users_per_s']:,.0f} users/s "
        f"(top-20 of {r['serve_items']} {r['serve_domain']} items, "
        f"batches of {args.batch}; target >= 5,000)   one request p50 {r['single_request_p50_ms']:.2f} ms   "
        f"artefacts load {r['artefact_load_s']:.2f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return r


if __name__ == "__main__":
    main()
