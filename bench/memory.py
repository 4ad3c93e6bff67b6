"""Memory recall benchmark (issue 18; run: `python -m bench.memory --help`).

TiM's LSH recall (:class:`consumers.memory.lsh.LSHIndex`: F(x) = argmax([xR; −xR]) of arXiv
2311.08719, with multi-probe and several tables as switches) against exact search
(:class:`~consumers.memory.lsh.ExactIndex`: faiss ``IndexFlatIP``) as the memory grows
(``--sizes``, default 10k, 100k, 1M thoughts), on ``--threads`` threads (faiss and BLAS), in one run:

1. per size: insert throughput into each index (thoughts/s), its memory footprint (``nbytes``),
   queries/s (``--queries`` queries in one batch, and the first ``--single`` one at a time as a chat
   turn asks; medians of ``--rounds``), recall@k of LSH against the exact top k, and the share of
   the memory each LSH query scans, for each ``--buckets`` × ``--tables`` × ``--probes`` setting
   (one LSH index built per buckets × tables, one at a time, so the peak memory is the vectors plus
   one index); goal recall@10 >= 0.95 at >= 10x the exact speed at the largest size. A batch lets
   faiss's exact search run as one BLAS matrix product (compute-bound) while a single query reads
   the whole memory (bandwidth-bound), so the speed ratio differs between the two;
2. store insert throughput: ``--store-thoughts`` ``Thought`` nodes with their vectors (base64
   float32, :func:`loaders.features.vector_text`) upserted into a fresh embedded store in one run,
   in batches of ``--store-batch``.
3. resident memory a writer gains per small write run (``--growth-runs`` runs of 5 thoughts), with
   the store's logged inserts against LadybugDB's ``COPY`` in the same run.

Vectors (1M MiniLM encodings would take hours here, ~200 sentences/s): ``--vectors minilm`` encodes
up to ``--base`` real thought-like sentences (GVD's user turns split into sentences, from
``consumers/memory/data/gvd`` or ``../shared/data/gvd``) with the shipped MiniLM; ``synthetic``
draws ``--base`` unit vectors around 64 Gaussian topic centres instead. The memory then grows to N
by ``x = normalise(w a + (1 - w) b + noise * g / sqrt(d))``: ``a`` a random base vector, ``b`` one of
``a``'s 10 nearest base vectors, ``w ~ U(0, 1)``, ``g ~ N(0, I_d)``, ``noise`` = ``--noise``
(paraphrase-like variants of real thoughts); queries are further such vectors drawn with another
seed (held out: never in the index). The tables and a figure (``--figure``: recall@k and queries/s
against the memory size, LSH vs exact) are written; the Markdown to ``--out``, JSON beside.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import peak_rss_mb
from bench.retrieval import timed

GOAL_RECALL, GOAL_SPEEDUP = 0.95, 10.0
CHUNK = 100_000
GVD = ("consumers/memory/data/gvd/memory_bank_en.json", "../shared/data/gvd/memory_bank_en.json")


def gvd_sentences(limit: int) -> list[str]:
    """Up to ``limit`` distinct sentences of GVD's user turns (empty if GVD is not here)."""
    path = next((Path(p) for p in GVD if Path(p).is_file()), None)
    if path is None:
        return []
    users = json.loads(path.read_text(encoding="utf-8"))
    turns = [t for u in users.values() for day in u.get("history", {}).values() for t in day]
    texts = [
        s.strip()
        for t in turns
        for part in (t["query"], t["response"])
        for s in re.split(r"(?<=[.!?])\s+", part)
    ]
    return list(dict.fromkeys(s for s in texts if len(s.split()) >= 4))[:limit]


def world_sentences(world: Path, limit: int) -> list[str]:
    """Up to ``limit`` distinct sentences of the world dialogues' turns (``consumers.memory``)."""
    from consumers.memory.world_dialogues import WorldDialogueConfig, generate_world_dialogues

    data = generate_world_dialogues(world, WorldDialogueConfig(users=200))
    texts = [
        s.strip()
        for d in data.dialogues
        for _, _, t in d.turns()
        for part in (t.query, t.response)
        for s in re.split(r"(?<=[.!?])\s+", part)
    ]
    return list(dict.fromkeys(s for s in texts if len(s.split()) >= 4))[:limit]


def base_vectors(kind: str, n: int, seed: int) -> tuple[np.ndarray, str]:
    """[n', 384] unit base vectors and a note on where they came from (module doc)."""
    if kind == "minilm" or kind.startswith("world:"):
        world = kind.removeprefix("world:") if kind != "minilm" else ""
        sentences = world_sentences(Path(world), n) if world else gvd_sentences(n)
        source = f"world dialogue sentences ({world})" if world else "GVD sentences"
        if sentences:
            from loaders.features import make_encoder

            return make_encoder("minilm").encode(sentences), f"{len(sentences)} {source} encoded by MiniLM"
        kind = "synthetic (GVD not found)"
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, 384)).astype(np.float32)
    x = centres[rng.integers(64, size=n)] / np.sqrt(384) + 0.6 * rng.standard_normal((n, 384)).astype(
        np.float32
    ) / np.sqrt(384)
    return x / np.linalg.norm(x, axis=1, keepdims=True), f"{n} {kind} vectors around 64 topic centres"


def grow(base: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """``n`` unit variants of ``base`` rows (module doc): [n, d] float32."""
    rng = np.random.default_rng(seed)
    near = np.argsort(-(base @ base.T), axis=1)[:, 1:11]  # each base vector's 10 nearest others
    d = base.shape[1]
    out = np.empty((n, d), np.float32)
    for lo in range(0, n, CHUNK):
        c = min(n, lo + CHUNK) - lo
        a = rng.integers(len(base), size=c)
        b = near[a, rng.integers(near.shape[1], size=c)]
        w = rng.uniform(size=(c, 1)).astype(np.float32)
        x = rng.standard_normal((c, d), dtype=np.float32)
        x *= np.float32(noise / np.sqrt(d))
        x += w * base[a]
        x += (1 - w) * base[b]
        out[lo : lo + c] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def recall(found: list[list[tuple[str, float]]], exact: list[list[tuple[str, float]]], k: int) -> float:
    return float(
        np.mean([len({i for i, _ in a} & {i for i, _ in e}) / k for a, e in zip(found, exact, strict=True)])
    )


def release_memory() -> None:
    """Hand freed index blocks back to the OS (glibc keeps sub-32 MB frees on its heap, so the RSS
    of one index after another would add up); a no-op where there is no glibc."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rates(search: Callable[..., Any], q: np.ndarray, args: argparse.Namespace) -> tuple[float, float, Any]:
    """Queries/s of ``search`` on the whole batch and one query at a time (the first ``--single``),
    medians of ``--rounds``; and the batch's answers."""
    batch, single = [], []
    found = None
    for _ in range(args.rounds):
        t, found = timed(search, q)
        batch.append(t)
        single.append(timed(lambda: [search(q[i : i + 1]) for i in range(min(args.single, len(q)))])[0])
    return len(q) / statistics.median(batch), min(args.single, len(q)) / statistics.median(single), found


def bench_size(base: np.ndarray, q: np.ndarray, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 1 at one memory size: the exact index, then each LSH setting, one index at a time."""
    from consumers.memory.lsh import ExactIndex, LSHIndex, buckets_for

    x = grow(base, n, args.noise, args.seed)
    ids = [f"th_{i:07d}" for i in range(n)]
    exact = ExactIndex(x.shape[1])
    add_s, _ = timed(exact.add, ids, x)
    qps, one_qps, truth = rates(partial(exact.search, k=args.k), q, args)
    name = "exact (faiss flat IP)"
    row: dict[str, Any] = {"series": name, "insert_per_s": n / add_s, "nbytes": exact.nbytes, "scanned": 1.0}
    row |= {
        "queries_per_s": qps,
        "single_queries_per_s": one_qps,
        "recall_at_k": recall(truth, truth, args.k),
    }
    rows: dict[str, dict[str, Any]] = {name: row | {"speedup": 1.0, "single_speedup": 1.0}}
    del exact
    release_memory()
    for spec in args.buckets:
        buckets = buckets_for(n) if spec == "auto" else int(spec)
        for tables in args.tables:
            lsh = LSHIndex(x.shape[1], buckets=buckets, seed=args.seed, tables=tables)
            add_s, _ = timed(lsh.add, ids, x)
            for probes in [p for p in args.probes if p <= buckets]:
                qps, one_qps, found = rates(partial(lsh.search, k=args.k, probes=probes), q, args)
                row = {"buckets": buckets, "tables": tables, "probes": probes, "insert_per_s": n / add_s}
                row |= {"series": f"LSH b={spec}, tables={tables}, probes={probes}", "nbytes": lsh.nbytes}
                row |= {"queries_per_s": qps, "speedup": qps / rows[name]["queries_per_s"]}
                row |= {
                    "single_queries_per_s": one_qps,
                    "single_speedup": one_qps / rows[name]["single_queries_per_s"],
                }
                row |= {"recall_at_k": recall(found, truth, args.k)}
                row["scanned"] = float(lsh.scanned(q, probes).mean() / n)
                row["goal_met"] = row["recall_at_k"] >= GOAL_RECALL and row["speedup"] >= GOAL_SPEEDUP
                row["single_goal_met"] = (
                    row["recall_at_k"] >= GOAL_RECALL and row["single_speedup"] >= GOAL_SPEEDUP
                )
                rows[f"LSH b={buckets}, tables={tables}, probes={probes}"] = row
            del lsh
            release_memory()
    return {"n": n, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def bench_store(base: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2: ``Thought`` nodes with vectors into a fresh embedded store, batch by batch."""
    from consumers.memory.thought import Thought
    from graph.store import StoreConfig, open_store
    from loaders.features import vector_text

    n = args.store_thoughts
    x = grow(base, n, args.noise, args.seed + 2)
    rows = []
    for i in range(n):
        session = f"s{i % 1000}"
        t = Thought(
            f"u{i % 100}", "user", "likes", f"topic {i}", session, "2026-01-01T00:00:00", (f"{session}#0",)
        )
        rows.append(t.row() | {"dim": x.shape[1], "vector": vector_text(x[i])})
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_store(StoreConfig(backend="embedded", path=Path(tmp)), create=True) as store,
    ):
        t0 = time.perf_counter()
        with store.run_context("memory") as run_id:
            for lo in range(0, n, args.store_batch):
                store.upsert_nodes("Thought", rows[lo : lo + args.store_batch], run_id=run_id)
        seconds = time.perf_counter() - t0
    return {"thoughts": n, "batch": args.store_batch, "seconds": seconds, "per_s": n / seconds}


def rss_mb() -> float:
    """This process's resident memory now (Linux ``/proc``), MB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def bench_growth(args: argparse.Namespace) -> dict[str, Any]:
    """Phase 3: resident memory a writer gains per small run (a memory session: 5 thoughts inserted,
    linked to a user of 2,000, one retired), with the store's path for small loads (logged
    ``CREATE`` s, ``UNWIND $rows``) against its path for bulk loads (``COPY``, ``LOAD FROM``: forced
    here by a limit of 0), each in a fresh store, ``--growth-runs`` runs."""
    from consumers.memory.thought import Thought
    from graph.backends import embedded
    from graph.store import StoreConfig, open_store

    out: dict[str, Any] = {"runs": args.growth_runs}
    limit = embedded.LOGGED_INSERT_MAX
    for name, cap in (("copy", 0), ("logged", limit)):
        embedded.LOGGED_INSERT_MAX = cap
        try:
            with (
                tempfile.TemporaryDirectory() as tmp,
                open_store(StoreConfig(backend="embedded", path=Path(tmp)), create=True) as store,
            ):
                with store.run_context("setup") as run_id:
                    store.upsert_nodes("User", [{"id": f"u{j}"} for j in range(2000)], run_id=run_id)
                release_memory()
                before = rss_mb()
                for i in range(args.growth_runs):
                    made = [
                        Thought("u0", "user", "said", f"thing {i}-{j}", "s", "2026", ("s#0",))
                        for j in range(5)
                    ]
                    with store.run_context("memory") as run_id:  # a memory session: insert, link, retire
                        store.upsert_nodes("Thought", [t.row() for t in made], run_id=run_id)
                        edges = [{"head": t.id, "tail": f"u{i}"} for t in made]
                        store.upsert_edges("MENTIONS", edges, run_id=run_id, head="Thought", tail="User")
                        store.upsert_nodes(
                            "Thought", [{"id": made[0].id, "status": "retired"}], run_id=run_id
                        )
                out[name] = (rss_mb() - before) / args.growth_runs
        finally:
            embedded.LOGGED_INSERT_MAX = limit
    return out


def markdown(r: dict[str, Any]) -> str:
    k, met = r["k"], {True: "met", False: "not met"}
    lines = [
        f"`{r['command']}`\n",
        f"Base: {r['base']}; memory grown by w·a + (1−w)·b + noise {r['noise']} (module doc); {r['queries']} "
        f"held-out queries in one batch (the first {r['single']} also one at a time, as a chat turn asks), "
        f"top {k}, {r['threads']} thread(s), {r['cpus']} CPUs, 1-min load average {r['loadavg']:.2f}; "
        f"queries/s: median of {r['rounds']} rounds; scanned: share of the memory an LSH query scores\n",
        f"| thoughts | index | insert/s | MB | batch q/s | × exact | one-at-a-time q/s | × exact | "
        f"recall@{k} vs exact | scanned |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in r["sizes"]:
        for name, w in size["rows"].items():
            lines.append(
                f"| {size['n']:,} | {name} | {w['insert_per_s']:,.0f} | {w['nbytes'] / 2**20:,.1f} | "
                f"{w['queries_per_s']:,.0f} | {w['speedup']:.1f} | {w['single_queries_per_s']:,.0f} | "
                f"{w['single_speedup']:.1f} | {w['recall_at_k']:.3f} | {w['scanned']:.2%} |"
            )
    last, s = r["sizes"][-1], r["store"]
    for lead, mode, key in (("\n", "a batch", "goal_met"), ("", "one query at a time", "single_goal_met")):
        hits = [n for n, w in last["rows"].items() if w.get(key)]
        lines.append(
            f"{lead}- goal recall@{k} >= {GOAL_RECALL} at >= "
            f"{GOAL_SPEEDUP:.0f}x exact at {last['n']:,} thoughts, {mode}: **{met[bool(hits)]}**; "
            f"met by: {', '.join(hits) or 'none of the settings timed'}"
        )
    lines += [
        f"- store insert: {s['thoughts']:,} Thought nodes with vectors into a fresh embedded store in "
        f"batches of {s['batch']:,}: {s['per_s']:,.0f} thoughts/s ({s['seconds']:.1f} s)",
        f"- MB: numpy/faiss arrays (`nbytes`); peak RSS of the run {r['peak_rss_mb']:,.0f} MB",
    ]
    if "growth" in r:
        g = r["growth"]
        lines.append(
            f"- resident memory a writer gains per small run ({g['runs']} memory sessions: 5 thoughts, their "
            f"links, a retire): {g['logged']:.2f} MB on the small-load path, {g['copy']:.2f} MB with COPY "
            "and LOAD FROM "
            f"({g['copy'] / max(g['logged'], 0.01):.0f}×)"
        )
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> Path:
    """Recall@k and queries/s against the memory size, one line per index setting."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    from graph import files

    fig = Figure(figsize=(15, 4.4))
    axes = fig.subplots(1, 3)
    ns = [s["n"] for s in r["sizes"]]
    shown = [f"LSH b={r['buckets'][0]}", "exact"]  # the first --buckets setting, beside exact
    probes = sorted({w["probes"] for s in r["sizes"] for w in s["rows"].values() if "probes" in w})
    series = dict.fromkeys(w["series"] for s in r["sizes"] for w in s["rows"].values())
    for name in [n for n in series if n.startswith(tuple(shown))]:
        pts = [(s["n"], w) for s in r["sizes"] for w in s["rows"].values() if w["series"] == name]
        first = pts[0][1]
        style: dict[str, Any] = {"color": "black", "lw": 2}
        if not name.startswith("exact"):  # colour: probes; dashed: several tables
            colour = f"C{probes.index(first['probes']) % 10}"
            style = {"color": colour, "ls": "-" if first["tables"] == 1 else "--"}
        for ax, metric in zip(axes, ("recall_at_k", "queries_per_s", "single_queries_per_s"), strict=True):
            ax.plot([p[0] for p in pts], [p[1][metric] for p in pts], marker="o", label=name, **style)
    labels = (f"recall@{r['k']} vs exact", "queries/s, one batch (log)", "queries/s, one at a time (log)")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xscale("log")
        ax.set_xticks(ns, [f"{n:,}" for n in ns])
        ax.minorticks_off()
        ax.set_xlabel("thoughts in memory")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax is not axes[0]:
            ax.set_yscale("log")
    axes[0].axhline(GOAL_RECALL, ls=":", color="grey")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="center right")
    b = "the power of two nearest √N" if r["buckets"][0] == "auto" else r["buckets"][0]
    fig.suptitle(f"TiM LSH (buckets b = {b}) vs exact faiss flat IP")
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    files.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path


def ints(v: str) -> list[int]:
    return [int(e) for e in v.split(",")]


FLAGS: list[tuple[str, Callable[[str], Any], Any, str]] = [
    ("--sizes", ints, [10_000, 100_000, 1_000_000], "memory sizes (default 10000,100000,1000000)"),
    (
        "--vectors",
        str,
        "minilm",
        "base vectors: minilm (GVD sentences), world:DIR (sentences of dialogues generated from a world) "
        "or synthetic (default minilm)",
    ),
    ("--base", int, 3000, "base vectors (default 3000)"),
    ("--noise", float, 0.35, "norm of the variants' Gaussian noise (default 0.35)"),
    ("--queries", int, 500, "held-out queries, one batch (default 500)"),
    ("--single", int, 50, "queries also timed one at a time (default 50)"),
    ("--k", int, 10, "neighbours per query (default 10)"),
    (
        "--buckets",
        lambda v: v.split(","),
        ["auto", "4096"],
        "LSH bucket counts; auto = buckets_for(N) (default auto,4096)",
    ),
    ("--tables", ints, [1, 2], "LSH tables (default 1,2)"),
    ("--probes", ints, [1, 4, 16, 32, 64, 256], "LSH probes per table (default 1,4,16,32,64,256)"),
    ("--store-thoughts", int, 10_000, "Thought nodes written to the store (default 10000)"),
    ("--store-batch", int, 10_000, "store upsert batch (default 10000)"),
    ("--growth-runs", int, 100, "small write runs for the resident-memory growth (default 100)"),
    ("--rounds", int, 3, "timing rounds; the median counts (default 3)"),
    ("--threads", int, 1, "faiss and BLAS threads (default 1)"),
    ("--seed", int, 0, "base, variants, queries and LSH projections (default 0)"),
    ("--out", Path, Path("bench/out/memory.md"), "Markdown table (the JSON beside it)"),
    ("--figure", Path, Path("docs/figures/memory_lsh.png"), "the figure (PNG)"),
]
QUICK = {
    "sizes": [2_000, 20_000],
    "buckets": ["auto"],
    "base": 300,
    "queries": 100,
    "single": 20,
    "store_thoughts": 1_000,
    "store_batch": 500,
    "growth_runs": 20,
}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag, kind, default, help_ in FLAGS:
        ap.add_argument(flag, type=kind, default=default, help=help_)
    ap.add_argument("--quick", action="store_true", help=f"small preset for the options not given: {QUICK}")
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results (also written to ``--out`` and ``--figure``)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from consumers.retrieval.index import faiss
    from graph import files
    from graph.progress import track

    ap = parser()
    args = ap.parse_args(argv)
    if args.quick:  # the preset fills only the options not given
        vars(args).update({key: v for key, v in QUICK.items() if getattr(args, key) == ap.get_default(key)})
    counts = (args.k, args.rounds, args.threads, args.base, args.queries, args.single)
    if min(*counts, *args.sizes, *args.tables, *args.probes) < 1:
        ap.error(
            "--k, --rounds, --threads, --base, --queries, --single, --sizes, --tables, --probes must be >= 1"
        )
    if args.vectors not in ("minilm", "synthetic") and not args.vectors.startswith("world:"):
        ap.error("--vectors is minilm, world:DIR or synthetic")
    faiss_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(args.threads)
    command = "python -m bench.memory " + shlex.join(argv if argv is not None else sys.argv[1:])
    r: dict[str, Any] = {"command": command, "threads": args.threads, "rounds": args.rounds, "k": args.k}
    try:
        with threadpool_limits(args.threads):
            base, r["base"] = base_vectors(args.vectors, args.base, args.seed)
            q = grow(base, args.queries, args.noise, args.seed + 1)
            r |= {"noise": args.noise, "queries": len(q)}
            r["sizes"] = [
                bench_size(base, q, n, args) for n in track(args.sizes, "memory sizes", unit="sizes")
            ]
            r["store"] = bench_store(base, args)
            r["growth"] = bench_growth(args)
    finally:
        faiss.omp_set_num_threads(faiss_threads)
    r["single"], r["buckets"] = min(args.single, args.queries), args.buckets
    r["cpus"], r["loadavg"], r["peak_rss_mb"] = os.cpu_count(), os.getloadavg()[0], peak_rss_mb()
    text = markdown(r)
    print(text, end="")
    files.write_text(args.out, text)
    files.write_text(args.out.with_suffix(".json"), json.dumps(r, indent=2))
    plot(r, args.figure)
    print(f"results: {args.out}, {args.out.with_suffix('.json')}, {args.figure}")
    return r


if __name__ == "__main__":
    main()
