"""The document mining job: PAIR's stages per chunk, with the passage as evidence.

Start (once per build, in the build's run):

1. read and check the documents (``loaders.documents``); spaCy → sentence-aligned chunks,
   mentions (gazetteer, named entities, noun chunks); entity linking (``link.py``);
2. one transaction writes the documents, chunks, ``HAS_CHUNK``, ``DESCRIBES`` and ``MENTIONS``
   (``record.py``); the heads of each chunk (the document's item, linked intents, categories and
   concepts) and the store's known facts about them go into the checkpoint.

Round r (1 ≤ r ≤ ``rounds``), as PAIR's job (``mining/pipeline/job.py``) but per (chunk, head):

1. round 1: adaptive relation filtering grounded in the passage → (chunk, head, relation) pairs;
2. expansion of every due pair grounded in the passage (progressive: later rounds list what was
   accepted and ask for more); each tail comes with the words it cites;
3. resolution and SC + relatedness aggregation; grounding (``ground.py``): a tail the passage
   does not contain is not accepted; the judgement prompt, grounded in the passage;
4. one write transaction (spans on every edge), then the checkpoint.

A killed job resumes after its last finished round; the documents are re-read and must be
unchanged (their hash is in the checkpoint). ``DocumentConfig.llm = False`` is the non-LLM
baseline: every linked head–mention pair whose labels a mined relation allows, in one sentence.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from graph.errors import InputError
from graph.store import GraphStore
from loaders.documents import DocumentSet
from mining import aio
from mining.documents.analyse import Analysis, analyse, parse_chunks
from mining.documents.baseline import cooccurring
from mining.documents.chunk import TextChunk
from mining.documents.ground import locate
from mining.documents.link import THRESHOLDS, Linker
from mining.documents.record import record_documents
from mining.documents.state import ChunkPair, DocState
from mining.llm.base import LLMClient, Usage
from mining.pipeline.aggregate import AggregateStats, candidates_of, judge, score
from mining.pipeline.builddir import BuildDir
from mining.pipeline.config import MiningConfig
from mining.pipeline.context import GraphContext
from mining.pipeline.embed import Embedder
from mining.pipeline.expand import ExpandStats, Mention, expand_pair
from mining.pipeline.job import StageProgress, _merge, _staged, known_facts
from mining.pipeline.relation_filter import FilterStats, filter_relations
from mining.pipeline.resolve import Resolver
from mining.pipeline.types import Candidate, Entity, Pair
from mining.pipeline.write import write_accepted

HEAD_LABELS = ("Item", "Intent", "Category", "Concept")


@dataclass(frozen=True)
class DocumentConfig:
    """How documents are read and linked.

    Args:
        max_chars: a chunk holds whole sentences up to this many characters.
        thresholds: MiniLM cosine a mention needs to link to an entity, per label.
        grounding: accept only tails the passage contains (``ground.py``).
        llm: False runs the non-LLM linker baseline instead of PAIR's prompts.
    """

    max_chars: int = 1000
    thresholds: tuple[tuple[str, float], ...] = tuple(sorted(THRESHOLDS.items()))
    grounding: bool = True
    llm: bool = True

    def __post_init__(self) -> None:
        if not 100 <= self.max_chars <= 20_000:
            raise InputError(f"--chunk-chars must be between 100 and 20,000, not {self.max_chars}")


@dataclass
class DocumentResult:
    run_id: str
    state: DocState
    accepted: list[Candidate] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    wall_s: float = 0.0

    def report(self) -> dict[str, Any]:
        stats = self.state.stats
        return {
            "run_id": self.run_id,
            "documents": stats.get("documents", {}),
            "rounds_done": self.state.round_done,
            "triples_per_relation": dict(sorted(self.state.accepted.items())),
            "triples": sum(self.state.accepted.values()),
            "heads": sum(len(h) for h in self.state.heads.values()),
            "relation_filter": stats.get("filter", {}),
            "expansion": stats.get("expand", {}),
            "aggregation": stats.get("aggregate", {}),
            "write": stats.get("write", {}),
            "llm": asdict(self.usage),
            "wall_s": round(self.wall_s, 2),
        }


def heads_of(analysis: Analysis, docs: DocumentSet, item_names: dict[str, str]) -> dict[str, list[Entity]]:
    """Per chunk: the item its document is about (named as in the store, else by the document's
    title), then every linked entity of a head label."""
    item_of = {
        d.id: Entity(d.item, item_names.get(d.item) or d.title or d.item, "Item")
        for d in docs.documents
        if d.item
    }
    links = analysis.by_chunk()
    out: dict[str, list[Entity]] = {}
    for chunk in analysis.chunks:
        found = [item_of[chunk.document]] if chunk.document in item_of else []
        for link in links.get(chunk.id, []):
            if link.entity is not None and link.entity.type in HEAD_LABELS:
                found.append(
                    Entity(link.entity.id, link.entity.name, link.entity.type, link.entity.description)
                )
        out[chunk.id] = list(dict.fromkeys(found))
    return out


class DocumentJob:
    """One ``mokg build --documents``: the documents, a client, a store and the build directory."""

    def __init__(
        self,
        store: GraphStore,
        client: LLMClient | None,
        config: MiningConfig,
        build: BuildDir,
        docs: DocumentSet,
        doc_config: DocumentConfig = DocumentConfig(),
        *,
        embed: Embedder | None = None,
        progress: StageProgress | None = None,
    ) -> None:
        self.store, self.client, self.config, self.build = store, client, config, build
        self.docs, self.doc_config, self.progress = docs, doc_config, progress
        self.embed = embed or Embedder()
        self.resolver = Resolver.from_store(store, self.embed, config.er_threshold)
        self.context = GraphContext()
        self.chunks: dict[str, TextChunk] = {}

    def start(self, note: str = "") -> DocState:
        """A new job: its run and checkpoint, then :meth:`prepare`."""
        run_id = self.store.start_run("mine", note)
        state = DocState(run_id, self.config.config_hash(), self.docs.sha256())
        self.build.save_state(state)
        self.prepare(state)
        return state

    def prepare(self, state: DocState) -> None:
        """The analysis, the documents in the store (in the job's run), the heads and known facts,
        the checkpoint. A job killed before its checkpoint says so runs this again (the write is
        idempotent)."""
        linker = Linker.from_store(self.store, self.embed, dict(self.doc_config.thresholds))
        n = len(self.docs.documents)
        tick = self.progress("reading documents (spaCy, linking)", n) if self.progress else None

        def advance(k: int) -> None:
            for _ in range(k if tick else 0):
                tick()  # type: ignore[misc]

        analysis = analyse(self.docs.documents, linker, self.doc_config.max_chars, advance)
        state.stats["documents"] = _link_stats(analysis, n)
        items = self.store.node_table("Item", ["name"])
        names = {
            str(i): str(n) for i, n in zip(items["id"], items["name"], strict=True) if isinstance(n, str)
        }
        state.heads = heads_of(analysis, self.docs, names)
        state.links = _links_json(analysis)
        state.recorded = record_documents(self.store, state.run_id, self.docs, analysis)
        state.context = known_facts(self.store, self.resolver).to_json()
        self.chunks = {c.id: c for c in analysis.chunks}
        self.build.save_state(state)

    def resume(self, state: DocState) -> None:
        """Re-read the (unchanged) documents' chunks for a job that stopped after its start (or
        prepare it, if it stopped before its documents were recorded)."""
        if state.documents != self.docs.sha256():
            raise InputError(
                f"the documents changed since run {state.run_id} started; pass --fresh to mine them anew"
            )
        if not state.recorded:
            self.prepare(state)
            return
        chunks, _ = parse_chunks(self.docs.documents, self.doc_config.max_chars)
        self.chunks = {c.id: c for c in chunks}

    async def arun(self, state: DocState) -> DocumentResult:
        began = time.perf_counter()
        self.build.truncate_candidates(state.round_done)
        self.context = GraphContext.from_json(state.context)
        result = DocumentResult(state.run_id, state)
        for round_ in range(state.round_done + 1, self.config.rounds + 1):
            result.accepted += await self._round(state, round_)
        if not state.finished:
            self.store.finish_run(state.run_id, ok=True)
        state.finished = True
        self.build.save_state(state)
        result.usage = self.client.usage if self.client is not None else Usage()
        result.wall_s = time.perf_counter() - began
        return result

    async def _round(self, state: DocState, round_: int) -> list[Candidate]:
        stats = AggregateStats()
        if self.client is not None:
            mentions, due, chunk_of = await self._mentions(state, round_)
            cands = candidates_of(mentions, self.config.n_samples, round_, self.resolver, stats)
            quotes = _quotes(mentions)
        else:
            cands, due, quotes = (cooccurring(state) if round_ == 1 else []), [], {}
            chunk_of = {c.prompt_ids[0]: c.prompt_ids[0].split("|", 1)[0] for c in cands}
            stats.candidates += len(cands)
        score(cands, self.config, self.embed)
        self._ground(cands, chunk_of, quotes, stats)
        if self.client is not None and self.config.judge and self.config.aggregation != "none":
            client = self.client
            jobs = [
                judge(
                    client,
                    c,
                    self.context.of(c.head),
                    self.config,
                    stats,
                    self.chunks[chunk_of[c.prompt_ids[0]]].text,
                )
                for c in cands
                if c.accepted
            ]
            await _staged(f"round {round_}: judgement", jobs, self.progress)
        accepted = [c for c in cands if c.accepted]
        stats.accepted = len(accepted)
        _merge(state.stats.setdefault("aggregate", {}), stats)
        _update_pairs(due, accepted, chunk_of, self.config.expansion == "single_shot")
        for rel, n in Counter(c.relation for c in accepted).items():
            state.accepted[rel] = state.accepted.get(rel, 0) + n
        written = write_accepted(self.store, state.run_id, accepted)
        write = state.stats.setdefault("write", {})
        write["confirmed"] = write.get("confirmed", 0) + written.pop("confirmed", 0)
        write["written"] = write.get("written", 0) + sum(written.values())
        self.build.append_candidates(cands)
        state.round_done = round_
        self.build.save_state(state)
        return accepted

    async def _mentions(
        self, state: DocState, round_: int
    ) -> tuple[list[Mention], list[ChunkPair], dict[str, str]]:
        cfg, client = self.config, self.client
        assert client is not None
        if round_ == 1:
            fstats = FilterStats()
            heads = [(c, h) for c, hs in sorted(state.heads.items()) for h in hs]
            jobs = [
                filter_relations(client, h, self.context.of(h), cfg, fstats, self.chunks[c].text)
                for c, h in heads
            ]
            found = await _staged(f"round {round_}: relation filter", jobs, self.progress)
            _merge(state.stats.setdefault("filter", {}), fstats)
            state.pairs += [ChunkPair(c, p) for (c, _), ps in zip(heads, found, strict=True) for p in ps]
        progressive = cfg.expansion == "progressive"
        due = [cp for cp in state.pairs if not cp.done and (cp.asked == 0 or progressive)]
        estats = ExpandStats()
        jobs_e = [
            expand_pair(
                client,
                cp.pair,
                self.context.of(cp.pair.head),
                cp.found,
                cp.asked + 1,
                cfg,
                estats,
                self.chunks[cp.chunk].text,
            )
            for cp in due
        ]
        found_e = await _staged(f"round {round_}: expansion", jobs_e, self.progress)
        chunk_of: dict[str, str] = {}
        for cp, ms in zip(due, found_e, strict=True):
            cp.asked += 1
            chunk_of.update({m.prompt_id: cp.chunk for m in ms})
        _merge(state.stats.setdefault("expand", {}), estats)
        return [m for ms in found_e for m in ms], due, chunk_of

    def _ground(
        self,
        cands: Sequence[Candidate],
        chunk_of: dict[str, str],
        quotes: dict[tuple[str, str], set[str]],
        stats: AggregateStats,
    ) -> None:
        for c in cands:
            chunk = self.chunks[chunk_of[c.prompt_ids[0]]]
            cited = {q for s in c.surfaces for q in quotes.get((c.prompt_ids[0], s), set())}
            c.spans = {(chunk.id, s, e) for s, e in locate(chunk, {*c.surfaces, c.tail.name}, cited)}
            if self.doc_config.grounding and c.accepted and not c.spans:
                c.accepted = False
                stats.ungrounded += 1


def _quotes(mentions: Sequence[Mention]) -> dict[tuple[str, str], set[str]]:
    """(prompt id, surface) → the quotes the samples gave with it (tails are resolved later)."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in mentions:
        if m.quote:
            out[m.prompt_id, m.surface].add(m.quote)
    return out


def _update_pairs(
    due: list[ChunkPair], accepted: list[Candidate], chunk_of: dict[str, str], single: bool
) -> None:
    by_pair: dict[tuple[str, Pair], list[str]] = defaultdict(list)
    for c in accepted:
        by_pair[chunk_of[c.prompt_ids[0]], Pair(c.head, c.relation, c.tail.type)].append(c.tail.name)
    for cp in due:
        new = [n for n in by_pair.get((cp.chunk, cp.pair), []) if n not in cp.found]
        cp.found += new
        cp.done = not new or single


def _link_stats(analysis: Analysis, n_docs: int) -> dict[str, Any]:
    methods = Counter(link.method for link in analysis.links)
    return {
        "documents": n_docs,
        "chunks": len(analysis.chunks),
        "linked_mentions": len(analysis.links),
        "links": dict(sorted(methods.items())),
    }


def _links_json(analysis: Analysis) -> dict[str, list[list[Any]]]:
    out: dict[str, list[list[Any]]] = defaultdict(list)
    for link in analysis.links:
        if link.entity is not None:
            e, m = link.entity, link.mention
            out[m.chunk].append([e.type, e.id, e.name, m.start, m.end])
    return dict(out)


def run_document_job(job: DocumentJob, state: DocState) -> DocumentResult:
    async def go() -> DocumentResult:
        try:
            return await job.arun(state)
        finally:
            if job.client is not None:
                await job.client.aclose()

    return aio.run(go())
