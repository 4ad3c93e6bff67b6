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
   Queries/s including encoding, ratios to BM25 and numpy; goal >= 1,000 queries/s with encoding.
   One ``mokg search`` and one numpy row per query precision of ``--precisions`` (``fp32``, ``bf16``:
   ``mokg search --precision``; the index holds the fp32 item vectors either way, as a fp32 index
   searched with bf16 queries), each in the same rounds; the goal is judged on the fastest
   ``mokg search`` row, its precision named, and each row's top k is compared with the fp32 row's
   (overlap). Item encoding throughput is measured per precision too;
3. the approximate index at scale: ``--scale-items`` N unit vectors in an exact ``flat`` index and
   the approximate ones of ``--scale-index`` (``hnsw``, ``ivf``;
   :func:`~consumers.retrieval.index.build_faiss`): build times; per index and search depth (HNSW
   efSearch, ``mokg search``'s and ``--ef-search``; IVF nprobe, the shipped one and ``--nprobe``),
   queries/s on the real encoded queries (search only), recall@k against the exact top k (ids, and
   ties counted: :func:`tie_recall`) and the speed ratio; goals recall (ties counted) >= 0.95 at
   >= 5x the exact speed. The N vectors are **not** N encoded texts (MiniLM in fp32 at ~100 items/s
   per core: hours for 1M): the corpus's real item vectors, then synthetic ``w * a + (1 - w) * b + noise``,
   renormalised (``a``, ``b`` real items of one leaf category, ``w ~ U(0, 1)``, isotropic Gaussian
   noise of norm ~ ``--noise``; 0.25 puts a synthetic item about as close to its nearest real item
   as real items are to their nearest other one: both medians are reported). ``--scale-real-world
   DIR`` starts from a generated world's items instead, encoded in bf16, and searches with its query
   texts (:mod:`bench.retrieval_world`);
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

from bench import peak_rss_mb

if TYPE_CHECKING:
    from loaders.features import TextEncoder

GOAL_QPS, GOAL_RECALL, GOAL_SPEEDUP = 1000.0, 0.95, 5.0
CHUNK = 100_000  # synthetic vectors made per step
NN_SAMPLE = 5000  # vectors whose nearest real item is looked up
TIE_EPS = 1e-5  # scores this close to the exact kth one count as ties (float32 kernels differ)


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


def nearest_cosine(a: np.ndarray, base: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
    """Per row of ``a``, its largest cosine to a row of ``base`` (not row ``own[i]``), in chunks."""
    out = np.full(len(a), -1.0, np.float32)
    for lo in range(0, len(a), 256):
        sims = a[lo : lo + 256] @ base.T
        if own is not None:
            sims[np.arange(len(sims)), own[lo : lo + 256]] = -2.0
        out[lo : lo + len(sims)] = sims.max(axis=1, initial=-1.0)
    return out


def tie_recall(approx: tuple[np.ndarray, np.ndarray], exact: tuple[np.ndarray, np.ndarray], k: int) -> float:
    """Recall@k counting ties (ann-benchmarks' distance-threshold recall): the share of the approximate
    top ``k`` (scores, rows) that scores at least the exact ``k``th score, less ``TIE_EPS``. Equal to
    the id overlap without ties; with duplicate vectors (a world's items share texts) any of the tied
    items is as right as the one the exact index happened to return."""
    kth = exact[0][:, k - 1 : k] - TIE_EPS
    return float((((approx[0][:, :k] >= kth) & (approx[1][:, :k] >= 0)).sum(1) / k).mean())


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Seconds of ``fn(*args)`` and its value."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def query_encoders(enc: TextEncoder, precisions: list[str]) -> dict[str, TextEncoder]:
    """{precision: encoder}: ``enc`` (fp32) and, where it has ``with_precision``, the others asked for."""
    out: dict[str, TextEncoder] = {"fp32": enc}
    with_precision = getattr(enc, "with_precision", None)
    for p in precisions:
        if p != "fp32" and with_precision is not None:
            out[p] = with_precision(p)
    return out


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
    encs = query_encoders(enc, args.precisions)
    load_s, _ = timed(enc.encode, ["warm-up"])
    encode_s, ivec = timed(embed, list(items["text"]), enc, root / "cache-items")
    meta = {"graph_version": "bench", "encoder": "minilm", "model_id": enc.model_id, "corpus": corpus.name}
    save_s, _ = timed(save_index, root / "index", ivec, items, args.index_type, meta | {"precision": "fp32"})
    read_s, idx = timed(load_index, root / "index")
    bm25_s, bm = timed(BM25, ids, list(items["text"]))
    enc_batch = getattr(enc, "batch_size", None)  # MiniLM's sentences per forward pass
    r: dict[str, Any] = {"corpus": corpus.name, "items": len(items), "queries": len(texts), "k": args.k}
    r |= {"index_type": args.index_type, "model_id": enc.model_id, "encoder_batch_size": enc_batch}
    r |= {"model_load_s": load_s, "encode_items_s": encode_s, "encode_items_per_s": len(items) / encode_s}
    r["encode_items_per_s_by_precision"] = {"fp32": len(items) / encode_s}
    for p, e in list(encs.items())[1:]:  # the same items into a fresh cache per precision
        e.encode(["warm-up"])
        t, _ = timed(embed, list(items["text"]), e, root / f"cache-items-{p}")
        r["encode_items_per_s_by_precision"][p] = len(items) / t
    r |= {"index_save_s": save_s, "index_load_s": read_s, "bm25_build_s": bm25_s}
    r["build_peak_rss_mb"] = peak_rss_mb()
    phases: dict[str, list[float]] = {f"{ph} {p}": [] for p in encs for ph in ("encode", "faiss", "numpy")}
    phases["bm25"] = []
    found: dict[str, Any] = {}
    for n in track(range(args.rounds), "search rounds", unit="rounds"):
        for p, e in encs.items():  # a fresh cache each round: every query encoded
            t_enc, qvec = timed(embed, texts, e, root / f"cache-queries-{p}-{n}")
            t_faiss, found[p] = timed(idx.search, qvec, args.k)
            t_numpy, exact = timed(numpy_search, ivec, ids, qvec, args.k)
            for ph, t in (("encode", t_enc), ("faiss", t_faiss), ("numpy", t_numpy)):
                phases[f"{ph} {p}"].append(t)
            if p == "fp32":
                q32, exact32 = qvec, exact
        phases["bm25"].append(timed(bm.search, texts, args.k)[0])
    med = {ph: statistics.median(v) for ph, v in phases.items()}
    r["rounds_s"], r["rows"] = phases, search_rows(med, list(encs), len(texts), args.index_type)
    r["encode_queries_per_s"] = len(texts) / med["encode fp32"]
    r["encode_queries_per_s_by_precision"] = {p: len(texts) / med[f"encode {p}"] for p in encs}
    r["index_recall_vs_exact"] = overlap_at_k(found["fp32"], exact32, args.k)
    r["overlap_with_fp32_queries"] = {p: overlap_at_k(found[p], found["fp32"], args.k) for p in encs}
    ours = {name: w for name, w in r["rows"].items() if name.startswith("mokg search")}
    r["goal_row"] = max(ours, key=lambda name: ours[name]["queries_per_s"])
    r["goal_met"] = ours[r["goal_row"]]["queries_per_s"] >= GOAL_QPS
    r["ivec"], r["qvec"], r["leaf"] = ivec, q32, items["leaf"].to_numpy()  # for the scale phase
    r["search_peak_rss_mb"] = peak_rss_mb()
    return r


def search_rows(med: dict[str, float], precisions: list[str], nq: int, index_type: str) -> dict[str, Any]:
    """The search table's rows from the median phase times: per query precision ``mokg search`` and
    numpy brute force, then BM25; ratios to BM25 and to numpy with queries of the same precision."""
    rows: dict[str, tuple[str, float, float]] = {}
    for p in precisions:
        tag = "" if p == "fp32" else f", {p} queries"
        rows[f"mokg search ({index_type} index{tag})"] = (p, med[f"encode {p}"], med[f"faiss {p}"])
    for p in precisions:
        tag = "" if p == "fp32" else f" ({p} queries)"
        rows[f"numpy brute force{tag}"] = (p, med[f"encode {p}"], med[f"numpy {p}"])
    rows["BM25 (bm25s)"] = ("fp32", 0.0, med["bm25"])
    numpy_qps = {p: nq / (med[f"encode {p}"] + med[f"numpy {p}"]) for p in precisions}
    table: dict[str, Any] = {}
    for name, (p, e, s) in rows.items():
        qps = nq / (e + s)
        table[name] = {"precision": p if e else "-", "encode_s": e, "search_s": s, "total_s": e + s}
        table[name] |= {"queries_per_s": qps, "search_qps": nq / s, "over_bm25": qps * med["bm25"] / nq}
        table[name]["over_numpy"] = qps / numpy_qps[p]
    return table


def bench_scale(
    base: np.ndarray, groups: np.ndarray, q: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Phase 3 of the module doc."""
    from consumers.retrieval.index import EF_SEARCH, build_faiss, ivf_lists

    make_s, x = timed(scale_vectors, base, groups, args.scale_items, args.noise, args.seed)
    q, k = q[: args.scale_queries], min(args.k, len(x))
    r: dict[str, Any] = {"items": len(x), "real_items": min(len(x), len(base)), "queries": len(q)}
    r["noise"], r["synthesis_s"], r["synthesis_peak_rss_mb"] = args.noise, make_s, peak_rss_mb()
    rows = np.sort(np.random.default_rng(args.seed).permutation(len(base))[:NN_SAMPLE])
    r["real_nn_cosine"] = float(np.median(nearest_cosine(base[rows], base, rows)))  # nearest *other*
    synthetic = x[len(base) :][:NN_SAMPLE]
    r["synthetic_nn_cosine"] = float(np.median(nearest_cosine(synthetic, base))) if len(synthetic) else None
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
        w["recall_at_k_ties"] = tie_recall(answers[name], answers["flat"], k)
        w["goal_met"] = w["recall_at_k_ties"] >= GOAL_RECALL and w["speedup"] >= GOAL_SPEEDUP
        r["rows"][name] = w
    r["shipped"] = {kind: shipped[kind] for kind in args.scale_index}
    r["goal_met"] = any(r["rows"][row]["goal_met"] for row in r["shipped"].values())
    r["kth_cosine"] = float(np.mean(answers["flat"][0][:, k - 1]))
    r["peak_rss_mb"] = peak_rss_mb()
    return r


def markdown(r: dict[str, Any]) -> str:
    s, x, k = r["search"], r["scale"], r["search"]["k"]
    met = {True: "met", False: "not met"}
    ours, hits = s["rows"][s["goal_row"]], [n for n, w in x["rows"].items() if w["goal_met"]]
    by_p = s["encode_items_per_s_by_precision"]
    lines = [
        f"`{r['command']}`\n",
        f"{s['corpus']} corpus: {s['items']} items, {s['queries']} distinct queries, top {k}, "
        f"encoder {s['model_id']}, {r['threads']} thread(s), {r['cpus']} CPUs, 1-min load average "
        f"{r['loadavg']:.2f}; medians of {r['rounds']} rounds\n",
        "| path | encode s | search s | total s | queries/s | search-only queries/s | / BM25 | / numpy "
        "| query precision |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {w['encode_s']:.3f} | {w['search_s']:.4f} | {w['total_s']:.3f} | "
            f"{w['queries_per_s']:,.0f} | {w['search_qps']:,.0f} | {w['over_bm25']:.2f} | "
            f"{w['over_numpy']:.2f} | {w['precision']} |"
            for name, w in s["rows"].items()
        ),
        f"\n- goal >= {GOAL_QPS:,.0f} queries/s including encoding, best row ({s['goal_row']}, "
        f"{ours['precision']} queries): {ours['queries_per_s']:,.0f} -> **{met[s['goal_met']]}** (query "
        "encoding alone: "
        + ", ".join(f"{p} {v:,.0f}" for p, v in s["encode_queries_per_s_by_precision"].items())
        + " queries/s)",
        f"- saved index's top {k} vs numpy's exact top {k} (fp32 queries): recall "
        f"{s['index_recall_vs_exact']:.4f}; top-{k} overlap with the fp32 queries' answer: "
        + ", ".join(f"{p} {v:.4f}" for p, v in s["overlap_with_fp32_queries"].items()),
        f"- encoding (cold cache, encoder batch {s['encoder_batch_size']}): "
        + ", ".join(f"{p} {v:,.0f}" for p, v in by_p.items())
        + f" items/s ({s['items']} items; fp32 in {s['encode_items_s']:.2f} s; model load + warm-up "
        f"{s['model_load_s']:.2f} s); the index holds the fp32 item vectors",
        f"- index build + write ({s['index_type']}) {s['index_save_s']:.3f} s, "
        f"load {s['index_load_s']:.3f} s; BM25 build {s['bm25_build_s']:.3f} s\n",
        f"Approximate index at scale: {x['items']:,} vectors ({x['real_items']} real encoded item "
        "vectors, the rest synthetic: mixtures of two real items of one leaf category + Gaussian noise "
        f"of norm ~{x['noise']}, renormalised; made in {x['synthesis_s']:.1f} s), {x['queries']} real "
        f"encoded queries, search only; mean cosine of the exact {k}th neighbour {x['kth_cosine']:.3f}; "
        f"median cosine to the nearest real item: real items {x['real_nn_cosine']:.3f}, synthetic "
        f"{x['synthetic_nn_cosine'] or float('nan'):.3f}\n",
        f"| index | build s | queries/s | recall@{k} vs exact | recall@{k}, ties counted | speed / exact "
        "| goal |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {w['build_s']:.1f} | {w['queries_per_s']:,.0f} | {w['recall_at_k']:.4f} | "
            f"{w['recall_at_k_ties']:.4f} | "
            f"{w['speedup']:.2f} | {met[w['goal_met']] if name != 'flat' else '-'} |"
            for name, w in x["rows"].items()
        ),
        f"\n- goal recall >= {GOAL_RECALL} (ties counted) at >= {GOAL_SPEEDUP:.0f}x exact with an index as "
        "`mokg search` "
        f"ships it ({', '.join(x['shipped'].values())}): **{met[x['goal_met']]}**; met by: "
        f"{', '.join(hits) or 'none of the settings timed'}",
        f"- peak RSS (MB, monotone): index build {s['build_peak_rss_mb']:.0f}, search "
        f"{s['search_peak_rss_mb']:.0f}, synthesis {x['synthesis_peak_rss_mb']:.0f}, "
        + ", ".join(f"{kind} {x[f'{kind}_peak_rss_mb']:.0f}" for kind in ("flat", *x["shipped"]))
        + f"; whole run {r['peak_rss_mb']:.0f}",
    ]
    w = r.get("real_world")
    if w is not None:
        rates = w["sample_items_per_s"]
        lines[next(n for n, line in enumerate(lines) if line.startswith("Approximate index at scale"))] = (
            f"Approximate index at scale: {x['items']:,} vectors: the {w['items']:,} items of the world "
            f"{w['world']} (title, category path, brand as the retrieval corpus reads them; "
            f"{w['distinct_texts']:,} distinct texts), encoded by "
            f"{w['model_id']} in {w['encode_all_s']:.0f} s (cached texts are read back, not encoded)"
            + (
                f", the rest synthetic (mixtures of two real items of a leaf + noise of norm ~{x['noise']}, "
                "renormalised)"
                if x["items"] > w["items"]
                else ""
            )
            + f"; {w['queries']:,} of the world's distinct query texts, bf16-encoded, search only; mean "
            f"cosine of the exact {k}th neighbour {x['kth_cosine']:.3f}; median cosine to the nearest "
            f"real item: real items {x['real_nn_cosine']:.3f}"
            + (f", synthetic {x['synthetic_nn_cosine']:.3f}. " if x["synthetic_nn_cosine"] else ". ")
            + f"Encoding {w['sample_size']:,} sampled item texts (fresh cache): fp32 {rates['fp32']:,.0f} "
            f"items/s, bf16 {rates['bf16']:,.0f} items/s\n"
        )
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
    (
        "--precisions",
        lambda v: [e for e in v.split(",") if e in ("fp32", "bf16")],
        ["fp32", "bf16"],
        "query encoding precisions, one row each (default fp32,bf16; bf16 needs an encoder with one)",
    ),
    ("--seed", int, 0, "corpus split and synthetic vectors (default 0)"),
    (
        "--scale-real-world",
        Path,
        None,
        "a world directory: the scale phase starts from its items encoded in bf16 and searches with its "
        "queries (bench/retrieval_world.py) instead of the electronics corpus",
    ),
    ("--real-world-queries", int, 1000, "--scale-real-world: distinct query texts sampled (default 1000)"),
    ("--cache", Path, None, "--scale-real-world: embedding cache (default $MOKG_CACHE or ~/.cache/mokg)"),
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
            if args.scale_real_world is not None:
                from bench.retrieval_world import world_vectors

                base, groups, q, r["real_world"] = world_vectors(
                    args.scale_real_world, args.real_world_queries, args.seed, args.cache
                )
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
