"""Document mining benchmark (run: `python -m bench.mining --documents 10000`; or this module).

1. **Reading at scale**: a world with ``--documents`` documents (product descriptions, briefs,
   guides, reviews) is generated and ingested; spaCy + chunking + mention finding + entity
   linking run over all of them, first with a cold spaCy cache, then warm: documents/s, chunks/s.
2. **A document build** with the world's teacher (simulated ``--latency`` per answer,
   ``--concurrency`` in flight) over a ``--sample`` of them into a fresh store copy: seconds, LLM
   calls per accepted triple; then the same build again with every cache warm (LLM answers,
   spaCy parses, MiniLM embeddings) into another fresh copy: its time as a share of the cold run
   (target ≤ 5%).

Each phase gets its own cache directory, so "cold" is cold.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any


def _world(root: Path, n: int) -> tuple[Path, Path]:
    from graph.store import StoreConfig, open_store
    from loaders.ingest import ingest_world
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world

    world = root / "world"
    generate_world(world_config("demo", 0, n_documents=n, n_items=max(1_000, n // 2)), world)
    store = open_store(StoreConfig(path=root / "graph"), create=True)
    ingest_world(store, world)
    store.close()
    return world, root / "graph"


def reading(world: Path, graph: Path, cache: Path) -> dict[str, Any]:
    """spaCy + linking over every document, cold then warm."""
    from graph.store import StoreConfig, open_store
    from loaders.documents import read_documents
    from mining.documents.analyse import analyse
    from mining.documents.link import Linker
    from mining.pipeline.embed import Embedder

    docs = read_documents(world / "visible/documents/documents.jsonl").documents
    store = open_store(StoreConfig(path=graph))
    linker = Linker.from_store(store, Embedder())
    store.close()
    out: dict[str, Any] = {"documents": len(docs)}
    os.environ["MOKG_CACHE"] = str(cache)
    for phase in ("cold", "warm"):
        began = time.perf_counter()
        analysis = analyse(docs, linker, 1000)
        seconds = time.perf_counter() - began
        out[phase] = {
            "seconds": round(seconds, 2),
            "documents_per_s": round(len(docs) / seconds, 1),
            "chunks_per_s": round(len(analysis.chunks) / seconds, 1),
            "chunks": len(analysis.chunks),
            "linked_mentions": len(analysis.links),
        }
    return out


def build(world: Path, graph: Path, root: Path, sample: Path, cache: Path, args: Any) -> dict[str, Any]:
    """One teacher document build over ``sample`` into a fresh copy of ``graph``."""
    from graph.store import StoreConfig, open_store
    from mining.llm.assemble import LLMSpec
    from mining.pipeline.build import BuildRequest, run_build
    from mining.pipeline.config import MiningConfig

    os.environ["MOKG_CACHE"] = str(cache)
    copy = root / f"store-{time.monotonic_ns()}"
    shutil.copytree(graph, copy)
    store = open_store(StoreConfig(path=copy))
    spec = LLMSpec(
        "teacher", noise="medium", world=world, latency_s=args.latency, concurrency=args.concurrency
    )
    request = BuildRequest(
        MiningConfig(rounds=2), spec, workdir=copy / "build", documents=sample, record=False
    )
    began = time.perf_counter()
    result = run_build(store, request)
    seconds = time.perf_counter() - began
    store.close()
    report = result.report
    triples = max(int(report["triples"]), 1)
    requests = report["llm"]["calls"] + report["llm"]["cache_hits"]
    return {
        "seconds": round(seconds, 2),
        "triples": report["triples"],
        "llm_calls": report["llm"]["calls"],
        "cache_hits": report["llm"]["cache_hits"],
        "requests_per_triple": round(requests / triples, 2),
    }


def run(args: Any, root: Path) -> dict[str, Any]:
    world, graph = _world(root, args.documents)
    out = {"reading": reading(world, graph, root / "cache-reading")}
    print(json.dumps(out["reading"]))
    lines = (world / "visible/documents/documents.jsonl").read_text().splitlines()
    sample = root / "sample.jsonl"
    sample.write_text("\n".join(random.Random(args.seed).sample(lines, min(args.sample, len(lines)))) + "\n")
    cold = build(world, graph, root, sample, root / "cache-build", args)
    print(json.dumps({"build": "cold", **cold}))
    warm = build(world, graph, root, sample, root / "cache-build", args)
    print(json.dumps({"build": "warm", **warm}))
    out |= {"cold": cold, "warm": warm, "warm_over_cold": warm["seconds"] / cold["seconds"]}
    r = out["reading"]
    print(
        f"command: python -m bench.mining --documents {args.documents} --sample {args.sample} "
        f"--latency {args.latency} --doc-concurrency {args.concurrency}\n"
        f"reading {r['documents']:,} documents (spaCy + chunks + mentions + linking): "
        f"{r['cold']['documents_per_s']:,} documents/s, {r['cold']['chunks_per_s']:,} chunks/s cold; "
        f"{r['warm']['documents_per_s']:,} documents/s warm (spaCy parses cached)\n"
        f"document build of {args.sample} documents: {cold['seconds']} s cold, "
        f"{cold['requests_per_triple']} LLM requests per accepted triple; cache-warm rerun "
        f"{warm['seconds']} s = {out['warm_over_cold']:.1%} of the cold run (target <= 5%)"
    )
    return out
