"""The mining job: PAIR's stages, round by round, checkpointed, written to the store.

Round r (1 ≤ r ≤ ``rounds``):

1. relation filtering for the round's new heads (round 1: the seeds) → (head, relation) pairs;
   or, with ``relations="free"``, one free-generation prompt per new head;
2. expansion: every new pair gets its first prompt, and with ``expansion="progressive"`` every
   earlier pair that still found something gets its next prompt, listing what was accepted;
3. resolution and aggregation of the mentions → accepted triples;
4. one write transaction for the round, then the checkpoint;
5. accepted tails of ``expand_types`` that were not heads yet become the next round's heads.

A killed job rerun with the same work directory resumes after its last finished round.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from graph.store import GraphStore
from mining import aio
from mining.llm.base import LLMClient, Usage
from mining.pipeline.aggregate import AggregateStats, candidates_of, judge, score
from mining.pipeline.builddir import BuildDir
from mining.pipeline.checkpoint import JobState, PairState
from mining.pipeline.config import MiningConfig
from mining.pipeline.context import GraphContext
from mining.pipeline.embed import Embedder
from mining.pipeline.evidence import BehaviourEvidence
from mining.pipeline.expand import ExpandStats, Mention, expand_pair
from mining.pipeline.free import free_mentions
from mining.pipeline.relation_filter import FilterStats, filter_relations
from mining.pipeline.resolve import Resolver
from mining.pipeline.types import Candidate, Entity, Pair
from mining.pipeline.write import write_accepted

T = TypeVar("T")
StageProgress = Callable[[str, int], Callable[[], None]]


@dataclass
class MiningResult:
    """What a job did: accepted triples (this process's rounds), counts, usage and time."""

    run_id: str
    state: JobState
    accepted: list[Candidate] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    wall_s: float = 0.0
    resumed_from: int = 0

    def report(self) -> dict[str, Any]:
        stats = self.state.stats
        return {
            "run_id": self.run_id,
            "rounds_done": self.state.round_done,
            "resumed_after_round": self.resumed_from,
            "triples_per_relation": dict(sorted(self.state.accepted.items())),
            "triples": sum(self.state.accepted.values()),
            "heads": len(self.state.visited),
            "relation_filter": stats.get("filter", {}),
            "expansion": stats.get("expand", {}),
            "aggregation": stats.get("aggregate", {}),
            "write": stats.get("write", {}),
            "llm": asdict(self.usage),
            "wall_s": round(self.wall_s, 2),
        }


@dataclass
class _Counts:
    confirmed: int = 0
    written: int = 0


def _merge(total: dict[str, Any], part: Any) -> dict[str, Any]:
    for key, value in asdict(part).items():
        if isinstance(value, dict):
            inner = total.setdefault(key, {})
            for k, v in value.items():
                inner[k] = inner.get(k, 0) + v
        elif value is not None:
            total[key] = total.get(key, 0) + value
    return total


async def _staged(name: str, jobs: Sequence[Awaitable[T]], progress: StageProgress | None) -> list[T]:
    tick = progress(name, len(jobs)) if progress else None

    async def one(job: Awaitable[T]) -> T:
        out = await job
        if tick:
            tick()
        return out

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def known_facts(store: GraphStore, resolver: Resolver) -> GraphContext:
    """The store's facts among the resolver's entities (PAIR's knowledge-empowered context): the
    category tree, earlier builds' accepted triples, a loaded KG."""
    names = {e.ref: e.name for label in ("Intent", "Category", "Brand") for e in resolver.entities(label)}
    return GraphContext.from_store(store, names)


class MiningJob:
    """One ``mokg build``: a client, a store, the stages and the work directory."""

    def __init__(
        self,
        store: GraphStore,
        client: LLMClient,
        config: MiningConfig,
        workdir: Path | BuildDir,
        *,
        write: bool = True,
        embed: Embedder | None = None,
        resolver: Resolver | None = None,
        progress: StageProgress | None = None,
        evidence: BehaviourEvidence | None = None,
        context: GraphContext | None = None,
    ) -> None:
        """``evidence``: behavioural evidence already computed from ``store`` (with
        ``config.evidence``; computed at :meth:`start` when not given). ``context``: the store's
        known facts already read (:func:`known_facts`; read at :meth:`start` when not given)."""
        self.store, self.client, self.config = store, client, config
        self.build = workdir if isinstance(workdir, BuildDir) else BuildDir(workdir)
        self.evidence, self.known = evidence, context
        self.write, self.progress = write, progress
        self.embed = embed or Embedder()
        self.resolver = resolver or Resolver.from_store(store, self.embed, config.er_threshold)
        self.context = GraphContext()  # what the prompts quote: set from the checkpoint by arun

    def start(self, seeds: Sequence[Entity], note: str = "") -> JobState:
        """A new job's state: the store's known facts and evidence are read here, once, and kept in
        the checkpoint, so the first round's prompts quote them and a resumed job prompts the same."""
        run_id = self.store.start_run("mine", note) if self.write else "dry-run"
        state = JobState(run_id, self.config.config_hash(), seeds=[e.id for e in seeds], frontier=list(seeds))
        state.context = (self.known or known_facts(self.store, self.resolver)).to_json()
        if self.config.evidence:
            state.evidence = (self.evidence or BehaviourEvidence.from_store(self.store)).to_json()
        self.build.save_state(state)
        return state

    async def arun(self, state: JobState) -> MiningResult:
        """Rounds ``state.round_done + 1 … rounds``; the checkpoint is saved after each."""
        began, resumed = time.perf_counter(), state.round_done
        self.build.truncate_candidates(state.round_done)
        self.context = GraphContext.from_json(state.context)
        self.context.evidence = BehaviourEvidence.from_json(state.evidence)
        result = MiningResult(state.run_id, state, resumed_from=resumed)
        for round_ in range(state.round_done + 1, self.config.rounds + 1):
            result.accepted += await self._round(state, round_)
        if self.write and not state.finished:
            self.store.finish_run(state.run_id, ok=True)
        state.finished = True
        self.build.save_state(state)
        result.usage, result.wall_s = self.client.usage, time.perf_counter() - began
        return result

    async def _round(self, state: JobState, round_: int) -> list[Candidate]:
        heads, state.frontier = state.frontier, []
        state.visited += heads
        mentions, due = await self._mentions(state, heads, round_)
        stats = AggregateStats()
        cands = candidates_of(mentions, self.config.n_samples, round_, self.resolver, stats)
        score(cands, self.config, self.embed)
        if self.config.judge and self.config.aggregation != "none":
            jobs = [
                judge(self.client, c, self.context.of(c.head), self.config, stats)
                for c in cands
                if c.accepted
            ]
            await _staged(f"round {round_}: judgement", jobs, self.progress)
        accepted = [c for c in cands if c.accepted]
        stats.accepted = len(accepted)
        _merge(state.stats.setdefault("aggregate", {}), stats)
        self._update_pairs(state, due, accepted)
        for rel, n in Counter(c.relation for c in accepted).items():
            state.accepted[rel] = state.accepted.get(rel, 0) + n
        if self.write:
            written = write_accepted(self.store, state.run_id, accepted)
            _merge(
                state.stats.setdefault("write", {}),
                _Counts(written.pop("confirmed", 0), sum(written.values())),
            )
        state.frontier = self._next_heads(state, accepted) if round_ < self.config.rounds else []
        self.build.append_candidates(cands)
        state.context = self.context.to_json()
        state.round_done = round_
        self.build.save_state(state)
        return accepted

    async def _mentions(
        self, state: JobState, heads: list[Entity], round_: int
    ) -> tuple[list[Mention], list[PairState]]:
        cfg, expand_stats = self.config, ExpandStats()
        if cfg.relations == "free":
            jobs = [
                free_mentions(self.client, h, self.context.of(h), cfg, self.embed, expand_stats)
                for h in heads
            ]
            found = await _staged(f"round {round_}: free relations", jobs, self.progress)
            _merge(state.stats.setdefault("expand", {}), expand_stats)
            return [m for ms in found for m in ms], []
        filter_stats = FilterStats()
        jobs_f = [filter_relations(self.client, h, self.context.of(h), cfg, filter_stats) for h in heads]
        pairs = await _staged(f"round {round_}: relation filter", jobs_f, self.progress)
        _merge(state.stats.setdefault("filter", {}), filter_stats)
        state.pairs += [PairState(p) for ps in pairs for p in ps]
        progressive = cfg.expansion == "progressive"
        due = [ps for ps in state.pairs if not ps.done and (ps.asked == 0 or progressive)]
        jobs_e = [
            expand_pair(
                self.client, ps.pair, self.context.of(ps.pair.head), ps.found, ps.asked + 1, cfg, expand_stats
            )
            for ps in due
        ]
        found = await _staged(f"round {round_}: expansion", jobs_e, self.progress)
        for ps in due:
            ps.asked += 1
        _merge(state.stats.setdefault("expand", {}), expand_stats)
        return [m for ms in found for m in ms], due

    def _update_pairs(self, state: JobState, due: list[PairState], accepted: list[Candidate]) -> None:
        by_pair: dict[Pair, list[Candidate]] = {}
        for cand in accepted:
            by_pair.setdefault(Pair(cand.head, cand.relation, cand.tail.type), []).append(cand)
            self.context.add(cand.head, cand.relation, cand.tail.name)
        for ps in due:
            new = [c.tail.name for c in by_pair.get(ps.pair, []) if c.tail.name not in ps.found]
            ps.found += new
            ps.done = not new or self.config.expansion == "single_shot"

    def _next_heads(self, state: JobState, accepted: list[Candidate]) -> list[Entity]:
        seen = {e.ref for e in state.visited}
        fresh: dict[tuple[str, str], tuple[float, Entity]] = {}
        for cand in accepted:
            tail = cand.tail
            if tail.type in self.config.expand_types and not tail.new and tail.ref not in seen:
                best = fresh.get(tail.ref, (-1.0, tail))[0]
                fresh[tail.ref] = (max(best, cand.score), tail)
        ranked = sorted(fresh.values(), key=lambda se: (-se[0], se[1].ref))
        return [e for _, e in ranked[: self.config.max_new_heads]]


def run_job(job: MiningJob, state: JobState) -> MiningResult:
    """Run ``job`` from ``state`` in a fresh event loop, closing the client's connections after."""

    async def go() -> MiningResult:
        try:
            return await job.arun(state)
        finally:
            await job.client.aclose()

    return aio.run(go())
