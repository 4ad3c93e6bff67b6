"""PAIR's ablations on our data, in one table (``mokg eval mining --ablations``).

For each teacher noise level a teacher server is started on 127.0.0.1 and every variant mines
the same seeds without writing (``write=False``); its triples are scored against the world's
truth with the same reachable heads (``evaluate.py``). The variants switch one part of PAIR off:

- ``PAIR``: adaptive relation filtering + progressive expansion + self-consistency + relatedness
  + the aggregation judgement;
- ``free relations``: free relation generation instead of filtering;
- ``single-shot``: one expansion prompt per (head, relation) instead of progressive prompts;
- ``no aggregation``: one greedy sample, every tail kept;
- ``SC``: the self-consistency vote alone (no relatedness, no judgement);
- ``SC + relatedness``: the vote and relatedness, no judgement.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from graph.store import GraphStore
from mining.llm.cache import ResponseCache
from mining.llm.cached import CachedClient
from mining.llm.openai_http import OpenAIClient
from mining.pipeline.build import BuildRequest, JobParts, run_build
from mining.pipeline.config import MiningConfig
from mining.pipeline.embed import Embedder
from mining.pipeline.evaluate import TruthKG, prf
from mining.pipeline.job import StageProgress, known_facts
from mining.pipeline.resolve import Resolver
from mining.pipeline.types import Entity

VARIANTS: dict[str, dict[str, object]] = {
    "PAIR": {},
    "free relations": {"relations": "free"},
    "single-shot": {"expansion": "single_shot"},
    "no aggregation": {"aggregation": "none"},
    "SC": {"aggregation": "sc", "judge": False},
    "SC + relatedness": {"aggregation": "sc_rel", "judge": False},
}


def run_ablations(
    store: GraphStore,
    truth: TruthKG,
    seeds: Sequence[Entity],
    base: MiningConfig,
    noise_levels: Sequence[str],
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    cache_dir: Path | None = None,
    concurrency: int = 16,
    progress: StageProgress | None = None,
    on_row: Callable[[dict[str, object]], None] | None = None,
) -> pd.DataFrame:
    """One row per (noise, variant): micro P/R/F1, triples and LLM calls."""
    from mining.teacher import TeacherServer, noise_level

    embed = Embedder()
    resolver = Resolver.from_store(store, embed, base.er_threshold)
    # the store is read once for every variant: resolver, known facts, and the seed entities
    parts = JobParts(embed, resolver, known_facts(store, resolver), seeds=tuple(seeds))
    heads = truth.reachable_heads(e.id for e in seeds)
    rows = []
    for level in noise_levels:
        with TeacherServer(None, port=0, noise=noise_level(level, base.seed)) as server:
            for name in variants:
                config = base.with_(**VARIANTS[name])
                inner = OpenAIClient(server.base_url, server.model, concurrency=concurrency, seed=base.seed)
                client = CachedClient(inner, ResponseCache(cache_dir) if cache_dir else ResponseCache())
                with tempfile.TemporaryDirectory() as work:
                    request = BuildRequest(config, workdir=Path(work), write=False, record=False)
                    built = run_build(store, request, client=client, parts=parts, progress=progress)
                result = built.mining
                assert result is not None
                mined = {(c.relation, c.head.id, c.tail.id) for c in result.accepted}
                micro = prf(mined, truth, heads).iloc[-1]
                row = {
                    "noise": level,
                    "variant": name,
                    "precision": round(float(micro["precision"]), 3),
                    "recall": round(float(micro["recall"]), 3),
                    "f1": round(float(micro["f1"]), 3),
                    "triples": len(mined),
                    "llm_requests": result.usage.calls + result.usage.cache_hits,
                }
                rows.append(row)
                if on_row:
                    on_row(row)
    return pd.DataFrame(rows)
