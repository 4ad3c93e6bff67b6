"""Retrieval performance benchmark (issue 17; run: `python -m bench.retrieval --help`).

In one run, on the electronics corpus (:func:`consumers.retrieval.corpus.electronics_corpus`: 643
real listings and their distinct query texts; no store needed), with the shipped MiniLM:

1. encoding throughput: every item text through :func:`consumers.retrieval.biencoder.embed` into a
   fresh cache (every text really encoded; the model loaded and warmed up first); the index build +
   write (:func:`~consumers.retrieval.index.save_index`), its load and the BM25 build times;
2. search throughput on one query batch, ``--rounds`` interleaved rounds, median per phase: ``mokg
   search --batch``'s path (:func:`~consumers.retrieval.index.load_index` once; ``embed`` of the whole
   batch into a fresh cache each round; ``ItemIndex.search``); numpy brute force on the same encoded
   queries (``q @ V.T``, ``argpartition`` top k, sorted); BM25 (bm25s; tokenising is its search).
   Queries/s including encoding, ratios to BM25 and numpy; goal >= 1,000 queries/s with encoding;
3. the approximate index at scale: ``--scale-items`` N unit vectors in an exact ``flat`` index and
   the approximate ones of ``--scale-index`` (``hnsw``, ``ivf``;
   :func:`~consumers.retrieval.index.build_faiss`): build times; per index and search depth (HNSW
   efSearch, ``mokg search``'s and ``--ef-search``; IVF nprobe, the shipped one and ``--nprobe``),
   queries/s on the real encoded queries
   (search only), recall@k against the exact top k and the speed ratio; goals recall >= 0.95 at >= 5x
   the exact speed. The N vectors are **not** N encoded texts (MiniLM at ~100 items/s per core: hours
   for 1M): the corpus's real item vectors, then synthetic ``w * a + (1 - w) * b + noise``,
   renormalised (``a``, ``b`` real items of one leaf category, ``w ~ U(0, 1)``, isotropic Gaussian
   noise of norm ~ ``--noise``; 0.25 puts a synthetic item about as close to its nearest real item
   as real items are to their nearest other one: both medians are reported);
4. the process's peak RSS (``ru_maxrss``, monotone) after each phase. The tables are printed and
   written to ``--out`` (Markdown; JSON beside). ``--threads``: torch, faiss and numpy BLAS threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.foundation import peak_rss_mb

if TYPE_CHECKING:
    from loaders.features import TextEncoder

GOAL_QPS, GOAL_RECALL, GOAL_SPEEDUP = 1000.0, 0.95, 5.0
CHUNK = 100_000  # synthetic vectors made per step


def numpy_search(vectors: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """Exact top ``k`` by brute force, shaped like ``ItemIndex.search``'s answer."""
    scores = q @ vectors.T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1)
    rows, best = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
    return [[(ids[j], float(v)) for j, v in zip(a, b, strict=True)] for a, b in zip(rows, best, strict=True)]


def scale_vectors(base: np.ndarray, groups: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """``n`` unit vectors: ``base`` first, then mixtures of two same-group rows plus noise (module doc)."""
    from graph.progress import track

    rng = np.random.default_rng(seed)
    d = base.shape[1]
    out = np.empty((n, d), np.float32)
    m = min(n, len(base))
    out[:m] = base[:m]
    codes = np.unique(groups, return_inverse=True)[1]
    order = np.argsort(codes, kind="stable")
    _, starts, sizes = np.unique(codes[order], return_index=True, return_counts=True)
    for lo in track(range(m, n, CHUNK), "synthetic vectors", unit="chunks"):
        c = min(n, lo + CHUNK) - lo
        a = rng.integers(len(base), size=c)
        b = order[starts[codes[a]] + rng.integers(sizes[codes[a]])]
        w = rng.uniform(size=(c, 1)).astype(np.float32)
        x = w * base[a] + (1 - w) * base[b]
        x += rng.standard_normal((c, d), dtype=np.float32) * np.float32(noise / np.sqrt(d))
        out[lo : lo + c] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Seconds of ``fn(*args)`` and its value."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def bench_search(enc: TextEncoder, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Phases 1 and 2 of the module doc."""
    from consumers.retrieval.biencoder import embed
    from consumers.retrieval.bm25 import BM25
    from consumers.retrieval.corpus import electronics_corpus
    from consumers.retrieval.index import load_index, overlap_at_k, save_index
    from graph.progress import track

    corpus = electronics_corpus(seed=args.seed)
    items = corpus.items.head(args.items).reset_index(drop=True)
    texts = list(dict.fromkeys(corpus.queries["text"]))[: args.queries]  # distinct: embed dedupes
    ids = [str(i) for i in items["item"]]
    load_s, _ = timed(enc.encode, ["warm-up"])
    encode_s, ivec = timed(embed, list(items["text"]), enc, root / "cache-items")
    meta = {"graph_version": "bench", "encoder": "minilm", "model_id": enc.model_id, "corpus": corpus.name}
    save_s, _ = timed(save_index, root / "index", ivec, items, args.index_type, meta)
    read_s, idx = timed(load_index, root / "index")
    bm25_s, bm = timed(BM25, ids, list(items["text"]))
    enc_batch = getattr(enc, "batch_size", None)  # MiniLM's sentences per forward pass
    r: dict[str, Any] = {"corpus": corpus.name, "items": len(items), "queries": len(texts), "k": args.k}
    r |= {"index_type": args.index_type, "model_id": enc.model_id, "encoder_batch_size": enc_batch}
    r |= {"model_load_s": load_s, "encode_items_s": encode_s, "encode_items_per_s": len(items) / encode_s}
    r |= {"index_save_s": save_s, "index_load_s": read_s, "bm25_build_s": bm25_s}
    r["build_peak_rss_mb"] = peak_rss_mb()
    phases: dict[str, list[float]] = {"encode": [], "faiss": [], "numpy": [], "bm25": []}
    for n in track(range(args.rounds), "search rounds", unit="rounds"):
        t_enc, qvec = timed(embed, texts, enc, root / f"cache-queries-{n}")  # a fresh cache: all encoded
        t_faiss, found = timed(idx.search, qvec, args.k)
        t_numpy, exact = timed(numpy_search, ivec, ids, qvec, args.k)
        for p, t in zip(phases, (t_enc, t_faiss, t_numpy, timed(bm.search, texts, args.k)[0]), strict=True):
            phases[p].append(t)
    med = {p: statistics.median(v) for p, v in phases.items()}
    enc_s, nq = med["encode"], len(texts)
    rows = {
        f"mokg search ({args.index_type} index)": (enc_s, med["faiss"]),
        "numpy brute force": (enc_s, med["numpy"]),
        "BM25 (bm25s)": (0.0, med["bm25"]),
    }
    bm25_qps, numpy_qps = nq / med["bm25"], nq / (enc_s + med["numpy"])
    table = {name: {"encode_s": e, "search_s": s, "total_s": e + s} for name, (e, s) in rows.items()}
    for row in table.values():
        row["queries_per_s"] = qps = nq / row["total_s"]
        row |= {"search_qps": nq / row["search_s"], "over_bm25": qps / bm25_qps}
        row["over_numpy"] = qps / numpy_qps
    r["rounds_s"], r["rows"], r["encode_queries_per_s"] = phases, table, nq / enc_s
    r["index_recall_vs_exact"] = overlap_at_k(found, exact, args.k)
    r["goal_met"] = next(iter(table.values()))["queries_per_s"] >= GOAL_QPS
    r["ivec"], r["qvec"], r["leaf"] = ivec, qvec, items["leaf"].to_numpy()  # for the scale phase
    r["search_peak_rss_mb"] = peak_rss_mb()
    return r


def bench_scale(
    base: np.ndarray, groups: np.ndarray, q: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Phase 3 of the module doc."""
    from consumers.retrieval.index import EF_SEARCH, build_faiss, ivf_lists

    make_s, x = timed(scale_vectors, base, groups, args.scale_items, args.noise, args.seed)
    q, k = q[: args.scale_queries], min(args.k, len(x))
    r: dict[str, Any] = {"items": len(x), "real_items": min(len(x), len(base)), "queries": len(q)}
    r["noise"], r["synthesis_s"], r["synthesis_peak_rss_mb"] = args.noise, make_s, peak_rss_mb()
    real = base @ base.T - 2 * np.eye(len(base), dtype=np.float32)  # nearest *other* real item
    r["real_nn_cosine"] = float(np.median(real.max(axis=1)))
    r["synthetic_nn_cosine"] = float(np.median((x[len(base) :][:5000] @ base.T).max(axis=1, initial=-1.0)))
    kinds = ("flat", *args.scale_index)
    indexes: dict[str, Any] = {}
    for name in kinds:
        r[f"{name}_build_s"], indexes[name] = timed(build_faiss, x, name)
        r[f"{name}_peak_rss_mb"] = peak_rss_mb()
    nlist, nprobe = ivf_lists(len(x))
    r["ivf_lists"], r["ivf_probes"] = nlist, nprobe
    del x  # the indexes hold their own copies
    # (index, its search depth): the shipped setting (`mokg search`) and the others asked for
    runs: dict[str, tuple[str, int]] = {"flat": ("flat", 0)}
    shipped = {"hnsw": f"hnsw, efSearch {EF_SEARCH}", "ivf": f"ivf, nprobe {nprobe} of {nlist}"}
    if "hnsw" in kinds:
        runs |= {f"hnsw, efSearch {ef}": ("hnsw", ef) for ef in sorted({EF_SEARCH, *args.ef_search})}
    if "ivf" in kinds:
        probes = sorted({nprobe, *(p for p in args.nprobe if p <= nlist)})
        runs |= {f"ivf, nprobe {p} of {nlist}": ("ivf", p) for p in probes}
    times: dict[str, list[float]] = {name: [] for name in runs}
    answers: dict[str, Any] = {}  # faiss answers: (scores, rows)
    for _ in range(args.rounds):
        for name, (kind, depth) in runs.items():
            if kind == "hnsw":
                indexes[kind].hnsw.efSearch = depth
            elif kind == "ivf":
                indexes[kind].nprobe = depth
            t, answers[name] = timed(indexes[kind].search, q, k)
            times[name].append(t)
    exact, flat_qps = answers["flat"][1], len(q) / statistics.median(times["flat"])
    r["rows"] = {}
    for name, (kind, _) in runs.items():
        w = {"build_s": r[f"{kind}_build_s"], "rounds_s": times[name]}
        w["queries_per_s"] = len(q) / statistics.median(times[name])
        w["speedup"] = w["queries_per_s"] / flat_qps
        found = zip(answers[name][1], exact, strict=True)
        w["recall_at_k"] = float(np.mean([len(set(a) & set(e)) / k for a, e in found]))
        w["goal_met"] = w["recall_at_k"] >= GOAL_RECALL and w["speedup"] >= GOAL_SPEEDUP
        r["rows"][name] = w
    r["shipped"] = {kind: shipped[kind] for kind in args.scale_index}
    r["goal_met"] = any(r["rows"][row]["goal_met"] for row in r["shipped"].values())
    r["kth_cosine"] = float(np.mean(answers["flat"][0][:, k - 1]))
    r["peak_rss_mb"] = peak_rss_mb()
    return r


def markdown(r: dict[str, Any]) -> str:
    s, x, k = r["search"], r["scale"], r["search"]["k"]
    met = {True: "met", False: "not met"}
    ours, hits = next(iter(s["rows"].values())), [n for n, w in x["rows"].items() if w["goal_met"]]
    lines = [
        f"`{r['command']}`\n",
        f"{s['corpus']} corpus: {s['items']} items, {s['queries']} distinct queries, top {k}, "
        f"encoder {s['model_id']}, {r['threads']} thread(s), {r['cpus']} CPUs, 1-min load average "
        f"{r['loadavg']:.2f}; medians of {r['rounds']} rounds\n",
        "| path | encode s | search s | total s | queries/s | search-only queries/s | / BM25 | / numpy |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {w['encode_s']:.3f} | {w['search_s']:.4f} | {w['total_s']:.3f} | "
            f"{w['queries_per_s']:,.0f} | {w['search_qps']:,.0f} | {w['over_bm25']:.2f} | "
            f"{w['over_numpy']:.2f} |"
            for name, w in s["rows"].items()
        ),
        f"\n- goal >= {GOAL_QPS:,.0f} queries/s including encoding: {ours['queries_per_s']:,.0f} "
        f"-> **{met[s['goal_met']]}** (query encoding alone: {s['encode_queries_per_s']:,.0f} queries/s)",
        f"- saved index's top {k} vs numpy's exact top {k}: recall {s['index_recall_vs_exact']:.4f}",
        f"- encoding (cold cache, encoder batch {s['encoder_batch_size']}): {s['encode_items_per_s']:,.0f} "
        f"items/s ({s['items']} items in {s['encode_items_s']:.2f} s; model load + warm-up "
        f"{s['model_load_s']:.2f} s)",
        f"- index build + write ({s['index_type']}) {s['index_save_s']:.3f} s, "
        f"load {s['index_load_s']:.3f} s; BM25 build {s['bm25_build_s']:.3f} s\n",
        f"Approximate index at scale: {x['items']:,} vectors ({x['real_items']} real encoded item "
        "vectors, the rest synthetic: mixtures of two real items of one leaf category + Gaussian noise "
        f"of norm ~{x['noise']}, renormalised; made in {x['synthesis_s']:.1f} s), {x['queries']} real "
        f"encoded queries, search only; mean cosine of the exact {k}th neighbour {x['kth_cosine']:.3f}; "
        f"median cosine to the nearest real item: real items {x['real_nn_cosine']:.3f}, synthetic "
        f"{x['synthetic_nn_cosine']:.3f}\n",
        f"| index | build s | queries/s | recall@{k} vs exact | speed / exact | goal |",
        "|---|---|---|---|---|---|",
        *(
            f"| {name} | {w['build_s']:.1f} | {w['queries_per_s']:,.0f} | {w['recall_at_k']:.4f} | "
            f"{w['speedup']:.2f} | {met[w['goal_met']] if name != 'flat' else '-'} |"
            for name, w in x["rows"].items()
        ),
        f"\n- goal recall >= {GOAL_RECALL} at >= {GOAL_SPEEDUP:.0f}x exact with an index as `mokg search` "
        f"ships it ({', '.join(x['shipped'].values())}): **{met[x['goal_met']]}**; met by: "
        f"{', '.join(hits) or 'none of the settings timed'}",
        f"- peak RSS (MB, monotone): index build {s['build_peak_rss_mb']:.0f}, search "
        f"{s['search_peak_rss_mb']:.0f}, synthesis {x['synthesis_peak_rss_mb']:.0f}, "
        + ", ".join(f"{kind} {x[f'{kind}_peak_rss_mb']:.0f}" for kind in ("flat", *x["shipped"]))
        + f"; whole run {r['peak_rss_mb']:.0f}",
    ]
    return "\n".join(lines) + "\n"


FLAGS: list[tuple[str, Callable[[str], Any], Any, str]] = [
    ("--items", int, None, "first N corpus items (default all 643)"),
    ("--queries", int, None, "first N distinct query texts (default all)"),
    ("--k", int, 10, "items per query (default 10)"),
    ("--scale-items", int, 1_000_000, "vectors of the scale phase (default 1,000,000)"),
    ("--scale-queries", int, None, "queries of the scale phase (default all)"),
    ("--ef-search", lambda v: [int(e) for e in v.split(",")], [256, 512], "more HNSW efSearch, e.g. 256,512"),
    ("--nprobe", lambda v: [int(e) for e in v.split(",")], [8, 32], "more IVF nprobe, e.g. 8,32"),
    (
        "--scale-index",
        lambda v: [e for e in v.split(",") if e in ("hnsw", "ivf")],
        ["hnsw", "ivf"],
        "approximate indexes of the scale phase (default hnsw,ivf)",
    ),
    ("--noise", float, 0.25, "norm of the synthetic vectors' noise (default 0.25)"),
    ("--rounds", int, 3, "timing rounds; the median counts (default 3)"),
    ("--threads", int, 2, "torch, faiss and BLAS threads (default 2)"),
    ("--seed", int, 0, "corpus split and synthetic vectors (default 0)"),
    ("--out", Path, Path("bench/out/retrieval.md"), "Markdown table (the JSON beside it)"),
]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag, kind, default, help_ in FLAGS:
        ap.add_argument(flag, type=kind, default=default, help=help_)
    ap.add_argument("--index-type", choices=["hnsw", "flat"], default="hnsw", help="the saved index")
    return ap


def main(
    argv: list[str] | None = None, *, encoder: Callable[[], TextEncoder] | None = None
) -> dict[str, Any]:
    """Run the benchmark; ``encoder`` (a factory) replaces MiniLM (tests)."""
    import torch
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from consumers.retrieval.index import faiss
    from graph import files
    from loaders.features import make_encoder

    ap = parser()
    args = ap.parse_args(argv)
    if min(args.k, args.rounds, args.threads, args.scale_items) < 1 or args.noise < 0:
        ap.error("--k, --rounds, --threads and --scale-items must be >= 1, --noise >= 0")
    torch.set_num_threads(args.threads)
    faiss_threads = faiss.omp_get_max_threads()  # restored at the end (tests run in one process)
    faiss.omp_set_num_threads(args.threads)
    command = "python -m bench.retrieval " + shlex.join(argv if argv is not None else sys.argv[1:])
    r: dict[str, Any] = {"command": command, "threads": args.threads, "rounds": args.rounds}
    try:
        with threadpool_limits(args.threads), tempfile.TemporaryDirectory() as tmp:
            s = bench_search((encoder or (lambda: make_encoder("minilm")))(), args, Path(tmp))
            base, q, groups = s.pop("ivec"), s.pop("qvec"), s.pop("leaf")
            r["search"], r["scale"] = s, bench_scale(base, groups, q, args)
    finally:
        faiss.omp_set_num_threads(faiss_threads)
    r["cpus"], r["loadavg"], r["peak_rss_mb"] = os.cpu_count(), os.getloadavg()[0], peak_rss_mb()
    text = markdown(r)
    print(text, end="")
    files.write_text(args.out, text)
    files.write_text(args.out.with_suffix(".json"), json.dumps(r, indent=2))
    print(f"results: {args.out}, {args.out.with_suffix('.json')}")
    return r


if __name__ == "__main__":
    main()
