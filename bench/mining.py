"""Mining benchmark (run: `python -m bench.mining --help`; documents: `--documents 10000`,
see ``bench/documents.py``).

Runs PAIR's job (``mining.pipeline.job``) against the world's teacher server over real HTTP at
concurrency 1, 8 and 32, each with a cold response cache, and reports triples/s and LLM requests
per accepted triple; then reruns the last setting with the cache warm and reports its time as a
ratio of the cold run (target ≤ 5%). The warm run is compared with the cold run at the same
concurrency and with the one at concurrency 1; how close it gets depends on the latency the
cache saves (see ``--latency``), since the warm run still writes every triple to a fresh store.
The teacher answers by lookup in microseconds, so a simulated per-answer latency (``--latency``,
default 0.05 s) stands in for a hosted model; the concurrency effect is what that latency makes
visible. The store is a temporary copy of
``--store`` (default: the demo store), so nothing is written to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from graph.store import StoreConfig, open_store
from mining.llm.cache import ResponseCache
from mining.llm.cached import CachedClient
from mining.llm.openai_http import OpenAIClient
from mining.pipeline.build import BuildRequest, JobParts, run_build
from mining.pipeline.config import MiningConfig
from mining.pipeline.embed import Embedder
from mining.pipeline.resolve import Resolver
from mining.teacher import TeacherServer, noise_level


def one_run(
    store_dir: Path, work: Path, cache: Path, args: argparse.Namespace, concurrency: int
) -> dict[str, Any]:
    """One mining job into a fresh copy of the store; its time, triples and requests."""
    copy = work / f"store-{concurrency}-{time.monotonic_ns()}"
    shutil.copytree(store_dir, copy)
    store = open_store(StoreConfig(backend="embedded", path=copy))
    config = MiningConfig(rounds=args.rounds, samples=args.samples, seed=args.seed)
    embed = Embedder()
    resolver = Resolver.from_store(store, embed, config.er_threshold)
    embed([e.name for label in ("Intent", "Category") for e in resolver.entities(label)])  # warm, untimed
    request = BuildRequest(config, limit=args.limit, workdir=work / "w", record=False)
    with TeacherServer(port=0, noise=noise_level(args.noise, 0), latency_s=args.latency) as server:
        inner = OpenAIClient(server.base_url, server.model, concurrency=concurrency)
        client = CachedClient(inner, ResponseCache(cache))
        began = time.perf_counter()
        built = run_build(store, request, client=client, parts=JobParts(embed, resolver))
        seconds = time.perf_counter() - began
    store.close()
    shutil.rmtree(work / "w", ignore_errors=True)
    result = built.mining
    assert result is not None
    triples = sum(result.state.accepted.values())
    requests = result.usage.calls + result.usage.cache_hits
    return {
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "triples": triples,
        "triples_per_s": round(triples / seconds, 1),
        "llm_calls": result.usage.calls,
        "cache_hits": result.usage.cache_hits,
        "requests_per_triple": round(requests / max(triples, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store", type=Path, default=Path("mokg-data/graph"), help="a store with the world's intents"
    )
    parser.add_argument("--limit", type=int, default=20, help="seed intents (a seeded sample)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--noise", default="medium")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated seconds per teacher answer")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--documents", type=int, help="benchmark document mining instead: a world with this many documents"
    )
    parser.add_argument("--sample", type=int, default=300, help="--documents: documents mined by the build")
    parser.add_argument("--doc-concurrency", type=int, default=32, help="--documents: requests in flight")
    args = parser.parse_args()
    if args.documents:
        from bench.documents import run

        with tempfile.TemporaryDirectory() as tmp:
            args.concurrency = args.doc_concurrency
            result = run(args, Path(tmp))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
        return
    if not args.store.exists():
        raise SystemExit(f"no store at {args.store}: run `make demo` first (or pass --store)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for level in [int(c) for c in args.concurrency.split(",")]:
            rows.append(one_run(args.store, work, work / f"cache-{level}", args, level))
            print(json.dumps(rows[-1]))
        cold = rows[-1]
        warm = one_run(args.store, work, work / f"cache-{cold['concurrency']}", args, cold["concurrency"])
        warm["cache"] = "warm"
        rows.append(warm)
        print(json.dumps(warm))
    ratio = warm["seconds"] / cold["seconds"]
    print(
        f"command: python -m bench.mining --limit {args.limit} --rounds {args.rounds} "
        f"--latency {args.latency}\n"
        f"speed-up 32 vs 1: {rows[0]['seconds'] / cold['seconds']:.1f}x; "
        f"cache-warm rerun / cold run at concurrency {cold['concurrency']}: {ratio:.1%}, "
        f"/ cold run at concurrency {rows[0]['concurrency']}: {warm['seconds'] / rows[0]['seconds']:.1%} "
        "(target <= 5%; the warm run still resolves, scores and writes every triple into a fresh store)"
    )
    if args.out:
        args.out.write_text(json.dumps({"runs": rows, "warm_over_cold": ratio}, indent=2))


if __name__ == "__main__":
    main()
