"""Step 3 of ``python -m bench.foundation`` (its module doc): scoring from saved artefacts.

The foundation model of the training phase is saved and loaded back; ``--requests`` requests, each
with ``--candidates`` candidates of its domain, are scored by every path, with top-20:

- ``full model`` (the full forward, as :func:`gnn.foundation.serve.score`) and ``fastscore``
  (:class:`gnn.foundation.fastscore.FastScorer`, checked against it to 1e-5), one request a call;
- ``fastscore, batches of B``: ``--micro-batch`` requests a call (:meth:`FastScorer.score_many`: the
  experts run once over their candidates), as a server that gathers concurrent requests does;
- on CPUs with native bf16 (AMX / AVX-512 BF16) the same two rows with ``precision="bf16"``, and
  the bf16 rows served by **two worker processes of one thread each** (a server's workers on two
  cores: each process loads the artefacts itself and scores half of the requests; the time runs
  from both being ready to both being done); bf16's quality against fp32: the held-out AUC of both
  on ``--auc-samples`` test samples, the largest logit gap and the top-20 overlap;
- for context, ``serve.score`` and ``FastScorer.score`` on every item of the domain
  (``--domain-requests`` requests).

Requests/s and the p50 latency of a call; goal >= 2,000 requests/s on 2 cores, judged on the best
path (named in the report).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import peak_rss_mb
from loaders.precision import cpu_has_fast_bf16

if TYPE_CHECKING:
    from gnn.foundation.data import FoundationData
    from gnn.foundation.fastscore import FastScorer
    from gnn.foundation.features import Encoded

SERVE_GOAL = 2000.0  # requests/s
SCORE_TOL = 1e-5  # fast vs full probabilities
TOP_K = 20
START_TIMEOUT_S = 300.0  # worker processes: load the artefacts, build the scorer


def timed_requests(fn: Callable[[int], object], n: int) -> dict[str, float]:
    """Requests/s of ``fn(0..n-1)`` one at a time, and the p50 latency."""
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    return {"requests": n, "requests_per_s": n / total, "p50_ms": 1000 * statistics.median(lat)}


def timed_batches(fn: Callable[[int, int], object], n: int, batch: int) -> dict[str, float]:
    """Requests/s of ``fn(i, j)`` over requests ``i:j`` in batches of ``batch``, and the p50 latency of
    one batch (what a request waits for when a server gathers ``batch`` of them)."""
    lat = []
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        s = time.perf_counter()
        fn(i, min(i + batch, n))
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    return {
        "requests": n,
        "requests_per_s": n / total,
        "p50_ms": 1000 * statistics.median(lat),
        "batch": batch,
    }


def precision_quality(fast: FastScorer, fast16: FastScorer, enc: Encoded, n: int) -> dict[str, Any]:
    """bf16 against fp32 on the first ``n`` held-out test samples: AUC of each, the logit gap."""
    from sklearn.metrics import roc_auc_score

    rows = enc.rows("test")[:n]
    args = (enc.request_ids[enc.req[rows].numpy()], enc.item[rows].numpy())
    doms = np.array(enc.domains, dtype=object)[enc.domain[rows].numpy()]
    l32, l16 = fast.sample_logits(*args, doms), fast16.sample_logits(*args, doms)
    y = enc.label[rows].numpy()
    auc32, auc16 = float(roc_auc_score(y, l32.numpy())), float(roc_auc_score(y, l16.numpy()))
    return {
        "test_samples": len(rows),
        "auc_fp32": auc32,
        "auc_bf16": auc16,
        "auc_change": auc16 - auc32,
        "max_logit_diff": float((l32 - l16).abs().max()),
        "logit_std": float(l32.std()),
    }


def bench_serving(
    model: Any, steps: int, enc: Encoded, data: FoundationData, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    """Step 3 of the module doc: save + load the artefacts, check the fast path, time every path."""
    import torch

    from gnn.foundation.fastscore import FastScorer
    from gnn.foundation.serve import full_logits, load_artefacts, save_artefacts, score

    kinds = data.requests["kind"].to_numpy()
    t0 = time.perf_counter()
    folder = save_artefacts(model, enc, kinds, root / "artefacts", {"graph_version": "bench"})
    save_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    art = load_artefacts(folder)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = FastScorer(art)
    fast_setup_s = time.perf_counter() - t0
    fast16 = FastScorer(art, precision="bf16") if cpu_has_fast_bf16() else None

    rng = np.random.default_rng(args.seed)
    picked = data.samples.iloc[rng.integers(len(data.samples), size=args.requests)]
    reqs = [(str(r), str(d)) for r, d in zip(picked["request"], picked["domain"], strict=True)]
    pools = {d: art.candidates(d) for d in art.enc.domains}
    c = args.candidates
    cands = [torch.from_numpy(rng.choice(pools[d], size=c, replace=len(pools[d]) < c)) for _, d in reqs]

    # the fast path's scores against the full model's (module doc: fails beyond SCORE_TOL)
    n_check = min(args.check, len(reqs))
    prob_diff = logit_diff = 0.0
    same_top = 0
    for i in range(n_check):
        (r, d), cand = reqs[i], cands[i]
        full, quick = full_logits(art, r, d, cand.numpy()), fast.logits(r, d, cand)
        logit_diff = max(logit_diff, float((full - quick).abs().max()))
        prob_diff = max(prob_diff, float((torch.sigmoid(full) - torch.sigmoid(quick)).abs().max()))
        same_top += [x for x, _ in score(art, r, d, TOP_K, cand.numpy())] == [
            x for x, _ in fast.score(r, d, TOP_K, cand.numpy())
        ]
    if prob_diff > SCORE_TOL:
        raise AssertionError(f"fast and full scores differ by {prob_diff:.2e} > {SCORE_TOL:.0e}")

    n, mb, n_dom = len(reqs), args.micro_batch, min(args.domain_requests, len(reqs))
    cand_np = [x.numpy() for x in cands]
    rows = {
        "full model": timed_requests(lambda i: score(art, *reqs[i], TOP_K, cand_np[i]), n),
        "fastscore": timed_requests(lambda i: fast.score(*reqs[i], TOP_K, cand_np[i]), n),
        f"fastscore, batches of {mb}": timed_batches(
            lambda i, j: fast.score_many(reqs[i:j], TOP_K, cand_np[i:j]), n, mb
        ),
    }
    quality: dict[str, Any] = {"bf16": "skipped: this CPU has no native bf16 (AMX / AVX-512 BF16)"}
    if fast16 is not None:
        f16 = fast16
        rows["fastscore bf16"] = timed_requests(lambda i: f16.score(*reqs[i], TOP_K, cand_np[i]), n)
        rows[f"fastscore bf16, batches of {mb}"] = timed_batches(
            lambda i, j: f16.score_many(reqs[i:j], TOP_K, cand_np[i:j]), n, mb
        )
        if args.workers > 1:
            rows[f"fastscore bf16, batches of {mb}, {args.workers} processes x 1 thread"] = timed_workers(
                folder, "bf16", reqs, cand_np, mb, args.workers
            )
        q_fast, q_f16, weights = fast, f16, f"the model of step 1 ({steps} steps)"
        if args.quality_epochs > 0:  # bf16 judged on a model trained to early stopping
            q_art = load_artefacts(_trained(enc, kinds, args.quality_epochs, args.seed, root / "quality"))
            q_fast, q_f16 = FastScorer(q_art), FastScorer(q_art, precision="bf16")
            weights = f"a model trained by fit for up to {args.quality_epochs} epochs (early stopping)"
        overlap = []
        for i in range(n_check):
            a, b = q_fast.logits(*reqs[i], cands[i]), q_f16.logits(*reqs[i], cands[i])
            top_a, top_b = set(a.topk(TOP_K).indices.tolist()), set(b.topk(TOP_K).indices.tolist())
            overlap.append(len(top_a & top_b) / TOP_K)
        quality = precision_quality(q_fast, q_f16, enc, args.auc_samples)
        quality |= {"top20_overlap": float(np.mean(overlap)), "weights": weights}
    rows |= {
        "serve.score (domain items)": timed_requests(lambda i: score(art, *reqs[i], TOP_K), n_dom),
        "FastScorer.score (domain items)": timed_requests(lambda i: fast.score(*reqs[i], TOP_K), n_dom),
    }
    domain_items = float(np.mean([len(pools[d]) for _, d in reqs[:n_dom]]))
    best = max(
        (k for k in rows if "domain items" not in k and k != "full model"),
        key=lambda k: rows[k]["requests_per_s"],
    )
    for name in rows:
        if "domain items" not in name:
            rows[name]["candidates"] = c
    for name in ("serve.score (domain items)", "FastScorer.score (domain items)"):
        rows[name]["candidates"] = domain_items
    size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    return {
        "weights": f"the foundation model of the training phase, {steps} steps",
        "artefact_mb": size,
        "save_s": save_s,
        "load_s": load_s,
        "fastscore_setup_s": fast_setup_s,
        "candidates": c,
        "domain_items": {d: len(p) for d, p in pools.items()},
        "checked_requests": n_check,
        "max_prob_diff": prob_diff,
        "max_logit_diff": logit_diff,
        "same_top20": same_top,
        "rows": rows,
        "bf16_quality": quality,
        "best_path": best,
        "best_over_goal": rows[best]["requests_per_s"] / SERVE_GOAL,
        "fast_macs_per_candidate": fast.macs_per_candidate,
        # the arithmetic the goal asks of the fast path: multiply-adds x 2 x candidates x requests/s
        "fast_gflops_at_goal": 2 * fast.macs_per_candidate * c * SERVE_GOAL / 1e9,
        "fast_gflops_measured": 2 * fast.macs_per_candidate * c * rows["fastscore"]["requests_per_s"] / 1e9,
        "fast_over_full": rows["fastscore"]["requests_per_s"] / rows["full model"]["requests_per_s"],
        "fast_over_goal": rows["fastscore"]["requests_per_s"] / SERVE_GOAL,
        "full_over_goal": rows["full model"]["requests_per_s"] / SERVE_GOAL,
        "peak_rss_mb": peak_rss_mb(),
    }


def _trained(enc: Encoded, kinds: np.ndarray, epochs: int, seed: int, folder: Path) -> Path:
    """Artefacts of a foundation model trained by ``fit`` (up to ``epochs``, early stopping)."""
    import torch

    from gnn.foundation.model import FoundationConfig, SRFoundation
    from gnn.foundation.serve import save_artefacts
    from gnn.foundation.train import TrainConfig, fit

    torch.manual_seed(seed)
    model = SRFoundation(enc, FoundationConfig())
    fit(model, enc, enc.rows("train"), enc.rows("valid"), TrainConfig(epochs=epochs, seed=seed))
    return save_artefacts(model, enc, kinds, folder, {"graph_version": "bench"})


# --- worker processes ---------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(folder: str, precision: str, reqs: list[tuple[str, str]], cands: list[np.ndarray]) -> None:
    """A worker's own artefacts, scorer and the requests (one torch thread)."""
    import torch

    from gnn.foundation.fastscore import FastScorer
    from gnn.foundation.serve import load_artefacts

    torch.set_num_threads(1)
    _WORKER.update(fast=FastScorer(load_artefacts(Path(folder)), precision=precision), reqs=reqs, cands=cands)


def _worker_ready(_: int) -> int:
    time.sleep(0.05)  # long enough for every worker to take one
    return os.getpid()


def _worker_run(span: tuple[int, int, int]) -> list[float]:
    """Score requests ``start:end`` in batches of ``batch``; the latency of each call."""
    start, end, batch = span
    fast, reqs, cands = _WORKER["fast"], _WORKER["reqs"], _WORKER["cands"]
    lat = []
    for i in range(start, end, batch):
        t0 = time.perf_counter()
        fast.score_many(reqs[i : min(i + batch, end)], TOP_K, cands[i : min(i + batch, end)])
        lat.append(time.perf_counter() - t0)
    return lat


def timed_workers(
    folder: Path, precision: str, reqs: list[tuple[str, str]], cands: list[np.ndarray], batch: int, procs: int
) -> dict[str, float]:
    """Requests/s of ``procs`` one-thread processes scoring their share of ``reqs`` in batches."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs, _worker_init, (str(folder), precision, reqs, cands)) as pool:
        pids: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(pids) < procs:  # every worker has loaded its scorer
            ready = pool.map_async(_worker_ready, range(4 * procs), chunksize=1)
            with contextlib.suppress(multiprocessing.TimeoutError):
                pids |= set(ready.get(timeout=max(deadline - time.monotonic(), 0.1)))
            if len(pids) < procs and time.monotonic() >= deadline:  # a failing set-up restarts forever
                raise RuntimeError(f"{procs} scoring workers did not start in {START_TIMEOUT_S:.0f} s")
        limit = START_TIMEOUT_S + len(reqs)  # a worker killed mid-task would leave map waiting forever
        warm = [(0, min(4 * batch, len(reqs)), batch)] * procs
        pool.map_async(_worker_run, warm, chunksize=1).get(timeout=limit)
        bounds = np.linspace(0, len(reqs), procs + 1).astype(int).tolist()
        spans = [(a, b, batch) for a, b in itertools.pairwise(bounds)]
        t0 = time.perf_counter()
        lat = pool.map_async(_worker_run, spans, chunksize=1).get(timeout=limit)
        total = time.perf_counter() - t0
    calls = [x for part in lat for x in part]
    return {
        "requests": len(reqs),
        "requests_per_s": len(reqs) / total,
        "p50_ms": 1000 * statistics.median(calls),
        "batch": batch,
        "processes": procs,
    }


# --- the report ---------------------------------------------------------------------------------


def report_serving(s: dict[str, Any]) -> None:
    """Print the scoring phase of :func:`bench_serving`'s result."""
    print(
        f"\nscoring ({s['weights']}; artefacts {s['artefact_mb']:.1f} MB, save {s['save_s']:.2f} s, "
        f"load {s['load_s']:.2f} s, FastScorer set-up {s['fastscore_setup_s']:.3f} s), "
        "one request at a time, top-20"
    )
    print(f"{'path':54} {'candidates':>10} {'requests':>9} {'requests/s':>11} {'p50 ms':>8} {'/ goal':>7}")
    for name, row in s["rows"].items():
        print(
            f"{name:54} {row['candidates']:10,.0f} {row['requests']:9,} {row['requests_per_s']:11,.0f} "
            f"{row['p50_ms']:8.3f} {row['requests_per_s'] / SERVE_GOAL:7.2f}"
        )
    print(
        f"fastscore / full model = {s['fast_over_full']:.1f}x; "
        f"check on {s['checked_requests']} requests: max |prob diff| "
        f"{s['max_prob_diff']:.1e}, max |logit diff| {s['max_logit_diff']:.1e}, same top-20 "
        f"{s['same_top20']}/{s['checked_requests']}"
    )
    verdict = "meets" if s["best_over_goal"] >= 1 else "MISSES"
    print(f"best path: {s['best_path']} = {s['best_over_goal']:.2f} x the goal ({verdict} it)")
    q = s["bf16_quality"]
    if "auc_fp32" in q:
        print(
            f"bf16 against fp32 on {q['test_samples']:,} held-out samples: AUC {q['auc_bf16']:.4f} vs "
            f"{q['auc_fp32']:.4f} ({q['auc_change']:+.4f}); max |logit diff| {q['max_logit_diff']:.1e} "
            f"(logit std {q['logit_std']:.2f}); top-20 overlap {q['top20_overlap']:.3f}"
            f" on the checked requests; weights: {q['weights']}"
        )
    else:
        print(f"bf16: {q['bf16']}")
    print(
        f"fastscore arithmetic: {s['fast_macs_per_candidate']:,} multiply-adds per candidate (experts "
        f"dominate) = {s['fast_gflops_measured']:.0f} GFLOP/s as measured; the goal needs "
        f"{s['fast_gflops_at_goal']:.0f} GFLOP/s"
    )
