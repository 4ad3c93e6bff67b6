"""PEACE benchmark (run: `python -m bench.rec --help`).

In one run, on the same graph (every domain's fit interactions of a leave-last-out split):

- training time per epoch of PEACE (:func:`gnn.rec.peace.train`, E8 with prototypes refreshed by
  k-means every epoch) and of PyG's ``LightGCN`` (:func:`gnn.rec.lightgcn.train_lightgcn`, BPR), with
  the same batch size; median over ``--epochs`` epochs and their ratio (target: PEACE ≤ 3×);
- full-ranking evaluation throughput (users/s: score every item of the domain, rank each held-out
  pair, :func:`gnn.rec.evaluate.evaluate_domain` over every domain) of both, and the ratio;
- the process's peak RSS after each phase (``ru_maxrss``; monotone, so LightGCN runs first);
- top-k serving from saved artefacts (:mod:`gnn.rec.serve`, numpy only): users/s in batches of
  ``--batch`` users and the p50 latency of one request (target: ≥ 5,000 users/s on 2 cores), for
  exact scoring and, where a domain has an IVF index (more than ``--ivf-min-items`` items), for
  each ``--nprobe`` with its recall@20 against exact scoring of the same users (by item id, and by
  score: returned items scoring at least the exact 20th, which is what counts under ties).

``--artefacts DIR`` keeps the exported artefacts; ``--serve-only --artefacts DIR`` only re-times
serving from them (no store, no training).

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
    with open_store(StoreConfig(path=root / "graph"), create=True) as store:
        ingest_world(store, root / "world", with_truth_kg=True)
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

    from gnn.rec.baselines import BaselineConfig, local_items
    from gnn.rec.lightgcn import LightGCNRec, train_lightgcn
    from gnn.rec.peace import Peace, PeaceConfig, PeaceNet, train

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
    timings: list[tuple[float, float]] = []  # per epoch: k-means refresh (unscaled), batches (scaled)
    t0 = time.perf_counter()
    train(net, data, data.domains, data.domains, epochs, cfg.lr, seed, max_batches=cap, timings=timings)
    out["peace_setup_s"] = time.perf_counter() - t0 - sum(r + b for r, b in timings)
    out["peace_epoch_s"] = statistics.median(r + b * n_batches / timed for r, b in timings)
    out["peace_refresh_s"] = timings[-1][0]
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


def bench_serving(art_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Load the artefacts and time top-20 for every domain in batches of ``--batch`` users (the first
    ``--serve-users`` users; all when unset) plus single requests: exact scoring, then the IVF index
    at each ``--nprobe`` where the domain has one, with its recall@20 against exact (same users)."""
    from gnn.rec.serve import load_artefacts

    t0 = time.perf_counter()
    art = load_artefacts(art_dir)
    load_s = time.perf_counter() - t0
    n = min(len(art.user_index), args.serve_users or len(art.user_index))
    per_domain = {domain: serve_domain(art, domain, n, args) for domain in art.domains}
    size = sum(f.stat().st_size for f in art_dir.iterdir()) / 2**20
    return {
        "serve_users": n,
        "serve": per_domain,
        "artefact_load_s": load_s,
        "artefact_mb": size,
        "serve_peak_rss_mb": peak_rss_mb(),
    }


def serve_domain(art: Any, domain: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Users/s, p50 of one request and (IVF) recall@20 against exact scoring of one domain."""
    from gnn.rec.serve import recommend, top_k

    arrays = art.domain(domain)
    modes = [("exact", 0)] + [("ivf", p) for p in args.nprobe if "ivf_order" in arrays]
    out: dict[str, Any] = {"items": len(arrays["item_ids"])}
    exact: tuple[np.ndarray, np.ndarray] | None = None
    ids = list(art.user_index)[:200]
    for mode, nprobe in modes:
        start, tops, scores = time.perf_counter(), [], []
        for lo in range(0, n, args.batch):
            idx, sc = top_k(arrays, np.arange(lo, min(lo + args.batch, n)), 20, index=mode, nprobe=nprobe)
            tops.append(idx)
            scores.append(sc)
        secs = time.perf_counter() - start
        lat = []
        for uid in ids:
            s = time.perf_counter()
            recommend(art, uid, domain, 20, index=mode, nprobe=nprobe)
            lat.append(time.perf_counter() - s)
        top, score = np.concatenate(tops), np.concatenate(scores)
        row: dict[str, float] = {"users_per_s": n / secs, "p50_ms": 1000 * statistics.median(lat)}
        if exact is None:
            exact = top, score
        else:
            row["recall_at_20"] = recall(top, exact[0])
            # ties: an item scoring at least the exact 20th score is as good as any exact pick
            row["score_recall_at_20"] = float(np.mean(score >= exact[1][:, -1:] - 1e-5))
        out["exact" if mode == "exact" else f"ivf-{nprobe}"] = row
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of |found ∩ truth| / |truth| (``-1`` pads ignored)."""
    hits = [
        len(set(f[f >= 0]) & set(t[t >= 0])) / max(int((t >= 0).sum()), 1)
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


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
    ap.add_argument(
        "--nprobe", type=int, action="append", default=None, help="IVF lists probed (repeat; default 8, 16)"
    )
    ap.add_argument(
        "--ivf-min-items", type=int, default=5000, help="domains above this many items get an IVF index"
    )
    ap.add_argument("--artefacts", type=Path, default=None, help="keep the exported artefacts here")
    ap.add_argument(
        "--serve-only", action="store_true", help="only time serving of the artefacts in --artefacts"
    )
    ap.add_argument(
        "--load-only", action="store_true", help="only time the loader (store → RecData) and its peak RSS"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-features", action="store_true", help="skip MiniLM text features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    args.nprobe = args.nprobe or [8, 16]
    if args.serve_only:
        if args.artefacts is None:
            ap.error("--serve-only needs --artefacts DIR")
        r = bench_serving(args.artefacts, args)
        report_serving(r, args)
        return r
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
    with open_store(StoreConfig(path=path)) as store:
        t0 = time.perf_counter()
        data = load_rec_data(store, RecDataConfig(features=not args.no_features))
    load = {"load_s": time.perf_counter() - t0, "load_peak_rss_mb": peak_rss_mb()}
    print(
        f"loader      {len(data.fit_user) + len(data.test_user):,} interactions in {load['load_s']:.1f} s, "
        f"peak RSS {load['load_peak_rss_mb']:.0f} MB (the process so far)"
    )
    if args.load_only:
        return load
    from gnn.rec.ivf import IVFConfig
    from gnn.rec.serve import export_artefacts

    r = bench_training(data, args)
    t0 = time.perf_counter()
    ivf = IVFConfig(min_items=args.ivf_min_items)
    art_dir = export_artefacts(r.pop("_model"), data, args.artefacts or root / "artefacts", ivf=ivf)
    r["artefact_export_s"] = time.perf_counter() - t0
    r |= bench_serving(art_dir, args)
    r |= load | {
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
        f"(k-means refresh {r['peace_refresh_s']:.3f} s; one-off set-up {r['peace_setup_s']:.2f} s)   "
        f"LightGCN {r['lightgcn_epoch_s']:.3f} s   "
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
    print(f"artefacts   export {r['artefact_export_s']:.1f} s; PEACE fit {r['peace_fit_s']:.1f} s")
    report_serving(r, args)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return r


def report_serving(r: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"artefacts   {r['artefact_mb']:.0f} MB, load {r['artefact_load_s']:.2f} s")
    for domain, d in r["serve"].items():
        for mode, m in d.items():
            if mode == "items":
                continue
            rec = (
                f", recall@20 vs exact: items {m['recall_at_20']:.3f}, "
                f"scores >= exact 20th {m['score_recall_at_20']:.3f}"
                if "recall_at_20" in m
                else ""
            )
            print(
                f"serving     {domain:15s} {d['items']:>7,} items {mode:8s}: {m['users_per_s']:,.0f} users/s "
                f"(top-20, {r['serve_users']:,} users in batches of {args.batch}; target >= 5,000)   "
                f"one request p50 {m['p50_ms']:.2f} ms{rec}"
            )
    if args.json and args.serve_only:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
