"""LightPAIR vs the teacher on held-out seeds: triple F1 against the world's truth, and latency.

Both systems run the same mining job (``write=False``, same config, same seeds, same resolver and
relatedness embedder) behind :class:`TimedClient`, which lets at most ``concurrency`` requests be
in flight and times each one from dispatch to answer. The seeds are intents that were never heads
in the distillation corpus (the checkpoint's ``held_out``).

Scoring: triples whose head is a held-out seed, against the true triples of those heads (``f1``);
and every mined triple against the truth of the reachable heads (``f1_all``; in rounds ≥ 2 heads
include entities that may be in the corpus). The teacher is an in-process lookup server, so it
answers in about a millisecond; ``TeacherServer(latency_s=L)`` adds a simulated hosted-LLM delay.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from graph.store import GraphStore
from mining import aio
from mining.llm.base import ClientBase, Completion, LLMClient, Request, Usage
from mining.pipeline.build import BuildRequest, JobParts, run_build
from mining.pipeline.config import MiningConfig
from mining.pipeline.embed import Embedder
from mining.pipeline.evaluate import Triple, TruthKG, prf
from mining.pipeline.evidence import BehaviourEvidence
from mining.pipeline.job import known_facts
from mining.pipeline.resolve import Resolver
from mining.pipeline.types import Entity


class TimedClient(ClientBase):
    """``inner`` with at most ``concurrency`` requests in flight, each timed (seconds) in ``latencies``."""

    def __init__(self, inner: LLMClient, concurrency: int) -> None:
        self.inner, self.name, self.model = inner, f"timed:{inner.name}", inner.model
        self.concurrency = concurrency
        self.latencies: list[float] = []
        self.requests: list[Request] = []
        self._gate: asyncio.Semaphore | None = None

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    async def agenerate(self, request: Request) -> Completion:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.concurrency)
        self.requests.append(request)
        async with self._gate:
            began = time.perf_counter()
            out = await self.inner.agenerate(request)
            self.latencies.append(time.perf_counter() - began)
            return out

    async def aclose(self) -> None:
        await self.inner.aclose()


def mine(
    store: GraphStore, client: TimedClient, config: MiningConfig, parts: JobParts
) -> tuple[set[Triple], float]:
    """The accepted triples of one dry-run mining job from ``parts.seeds``, and its wall time."""
    with tempfile.TemporaryDirectory() as work:
        request = BuildRequest(config, workdir=Path(work), write=False, record=False)
        began = time.perf_counter()
        built = run_build(store, client=client, request=request, parts=parts)
        wall = time.perf_counter() - began
    assert built.mining is not None
    return {(c.relation, c.head.id, c.tail.id) for c in built.mining.accepted}, wall


def replay(client: LLMClient, requests: Sequence[Request], concurrency: int) -> dict[str, float]:
    """Serving latency alone: ``requests`` sent to ``client`` with ``concurrency`` in flight, outside
    any mining job (no pipeline work shares the event loop or the CPU), after one untimed warm-up
    call (model load, connection)."""

    async def go() -> TimedClient:
        timed = TimedClient(client, concurrency)
        if requests:
            await client.agenerate(requests[0])
        await asyncio.gather(*(timed.agenerate(r) for r in requests))
        await client.aclose()
        return timed

    timed = aio.run(go())
    lat = sorted(timed.latencies) or [0.0]
    return {
        "replay_ms_mean": round(1000 * statistics.fmean(lat), 1),
        "replay_ms_p95": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1),
    }


def score_row(
    name: str, mined: set[Triple], truth: TruthKG, seeds: Sequence[Entity]
) -> dict[str, float | str]:
    ids = {e.id for e in seeds}
    own = prf({x for x in mined if x[1] in ids}, truth, ids).iloc[-1]
    every = prf(mined, truth, truth.reachable_heads(ids)).iloc[-1]
    return {
        "system": name,
        "precision": round(float(own["precision"]), 3),
        "recall": round(float(own["recall"]), 3),
        "f1": round(float(own["f1"]), 3),
        "f1_all": round(float(every["f1"]), 3),
        "triples": len(mined),
    }


def relation_rows(name: str, mined: set[Triple], truth: TruthKG, seeds: Sequence[Entity]) -> pd.DataFrame:
    """Precision, recall and F1 per relation on the held-out heads (rows of :func:`prf`)."""
    ids = {e.id for e in seeds}
    rows = prf({x for x in mined if x[1] in ids}, truth, ids)
    return rows.assign(system=name)[["system", *rows.columns]].round(3)


def timing(client: TimedClient, wall: float) -> dict[str, float]:
    lat = sorted(client.latencies) or [0.0]
    return {
        "calls": len(client.latencies),
        "latency_ms_mean": round(1000 * statistics.fmean(lat), 1),
        "latency_ms_p95": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1),
        "wall_s": round(wall, 1),
    }


def compare(
    store: GraphStore,
    truth: TruthKG,
    seeds: Sequence[Entity],
    checkpoint_dir: Path,
    config: MiningConfig,
    *,
    concurrency: int = 16,
    latencies: Sequence[float] = (0.5, 0.0),
    noise: str = "medium",
    threads: int = 1,
    precision: str = "fp32",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table and, per system, precision / recall / F1 per relation on the held-out
    heads (:func:`relation_rows`). The table has one row for LightPAIR and one per teacher
    latency, with ``f1_ratio`` = F1 / teacher F1 and ``teacher_over_lightpair_latency`` = this
    row's mean latency / LightPAIR's, both inside the mining job. ``replay_*``: the requests
    LightPAIR's job made, replayed at the same concurrency to a fresh LightPAIR and to each teacher
    server, outside the job (serving latency alone); ``teacher_over_lightpair_replay`` is their
    ratio. ``precision``: LightPAIR's encoder precision (fp32, bf16)."""
    from mining.lightpair.client import LightPAIRClient
    from mining.llm.openai_http import OpenAIClient
    from mining.teacher import TeacherServer, noise_level

    embed = Embedder()
    resolver = Resolver.from_store(store, embed, config.er_threshold)
    rows: list[dict[str, float | str]] = []
    light = TimedClient(LightPAIRClient(checkpoint_dir, threads=threads, precision=precision), concurrency)
    evidence = BehaviourEvidence.from_store(store) if config.evidence else None  # once for all systems
    parts = JobParts(embed, resolver, known_facts(store, resolver), evidence, tuple(seeds))
    mined, wall = mine(store, light, config, parts)
    rows.append(
        {
            **score_row("LightPAIR", mined, truth, seeds),
            "teacher_latency_s": float("nan"),
            **timing(light, wall),
        }
    )
    per_relation = [relation_rows("LightPAIR", mined, truth, seeds)]
    rows[0].update(
        replay(
            LightPAIRClient(checkpoint_dir, threads=threads, precision=precision), light.requests, concurrency
        )
    )
    for latency in latencies:
        with TeacherServer(None, port=0, noise=noise_level(noise, config.seed), latency_s=latency) as server:
            inner = OpenAIClient(server.base_url, server.model, concurrency=concurrency, seed=config.seed)
            teacher = TimedClient(inner, concurrency)
            mined, wall = mine(store, teacher, config, parts)
            fresh = OpenAIClient(server.base_url, server.model, concurrency=concurrency, seed=config.seed)
            served = replay(fresh, light.requests, concurrency)
        row = score_row(f"teacher ({latency:g} s simulated latency)", mined, truth, seeds)
        if len(per_relation) == 1:  # the teacher's answers do not depend on its latency
            per_relation.append(relation_rows("teacher", mined, truth, seeds))
        rows.append({**row, "teacher_latency_s": latency, **timing(teacher, wall), **served})
    table = pd.DataFrame(rows)
    teacher_f1 = float(table["f1"].iloc[1]) if len(table) > 1 else float("nan")
    table["f1_ratio"] = (table["f1"] / teacher_f1).round(3) if teacher_f1 else float("nan")
    light_ms = float(table["latency_ms_mean"].iloc[0])
    table["teacher_over_lightpair_latency"] = (table["latency_ms_mean"] / max(light_ms, 1e-9)).round(2)
    light_replay = float(table["replay_ms_mean"].iloc[0])
    table["teacher_over_lightpair_replay"] = (table["replay_ms_mean"] / max(light_replay, 1e-9)).round(2)
    return table, pd.concat(per_relation, ignore_index=True)


def by_relation(relations: pd.DataFrame) -> pd.DataFrame:
    """One row per relation (held-out heads): true triples, then P / R / F1 of each system."""
    out = relations.drop_duplicates("relation")[["relation", "truth"]].set_index("relation")
    for system, rows in relations.groupby("system", sort=False):
        part = rows.set_index("relation")[["precision", "recall", "f1"]]
        out = out.join(part.set_axis([f"P {system}", f"R {system}", f"F1 {system}"], axis=1))
    return pd.DataFrame(out).reset_index()


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison's main columns under short names (an 80-column terminal fits them; ``--out``
    writes every column)."""
    names = {
        "system": "system",
        "precision": "P",
        "recall": "R",
        "f1": "F1",
        "f1_ratio": "F1/teacher",
        "triples": "triples",
        "calls": "calls",
        "latency_ms_mean": "ms/call (job)",
        "replay_ms_mean": "ms/call (replay)",
        "teacher_over_lightpair_replay": "speed-up (replay)",
    }
    out = table[[c for c in names if c in table.columns]].rename(columns=names)
    return out.assign(system=out["system"].str.replace(" simulated latency", "", regex=False))
