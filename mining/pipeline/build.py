"""One build workflow: ``run_build(store, BuildRequest) -> BuildResult``.

The CLI (``mokg build``), the demo, the benchmark and the tests call this one function. It
derives the job key (config, seeds, LLM, store), finds or creates the build directory, resumes
a killed job from its checkpoint (or returns at once when the job has finished), assembles the
client chain (backend → response cache → transcript recorder), runs the rounds, marks the run
failed if anything escapes, and writes ``report.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError
from graph.store import GraphStore
from loaders.documents import DocumentSet, read_documents
from mining.documents.job import DocumentConfig, DocumentJob, DocumentResult, run_document_job
from mining.documents.state import DocState
from mining.llm.assemble import LLMSpec, open_client
from mining.llm.base import LLMClient
from mining.llm.recording import RecordingClient
from mining.pipeline.builddir import ROOT, BuildDir
from mining.pipeline.checkpoint import JobState
from mining.pipeline.config import MiningConfig
from mining.pipeline.context import GraphContext
from mining.pipeline.embed import Embedder
from mining.pipeline.evidence import BehaviourEvidence
from mining.pipeline.job import MiningJob, MiningResult, StageProgress, run_job
from mining.pipeline.resolve import Resolver
from mining.pipeline.seeds import load_seeds
from mining.pipeline.types import Entity

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    """What to build.

    Args:
        config: PAIR's knobs and ablation switches.
        llm: which LLM answers, and how it is called.
        seeds: ``intents`` (every Intent in the store) or a .jsonl/.csv file of name,type.
        limit: mine from a seeded random sample of this many seeds.
        workdir: the build directory (default ``root/build-<job key>``).
        root: where builds live.
        fresh: ignore an earlier checkpoint of this job.
        write: write to the store in a run (False: a dry run, nothing stored).
        record: append every request and answer to the transcript.
        price: price per 1,000 prompt and completion tokens, for the report's cost.
        documents: mine these documents (a folder of .txt/.md, or .jsonl/.csv with id,text)
            instead of expanding from ``seeds`` (``mining/documents/``).
        doc_config: how documents are chunked and linked (``llm=False``: no LLM, the linker
            baseline).
    """

    config: MiningConfig = field(default_factory=MiningConfig)
    llm: LLMSpec = field(default_factory=LLMSpec)
    seeds: str = "intents"
    limit: int | None = None
    workdir: Path | None = None
    root: Path = ROOT
    fresh: bool = False
    write: bool = True
    record: bool = True
    price: tuple[float, float] = (0.0, 0.0)
    documents: Path | None = None
    doc_config: DocumentConfig = field(default_factory=DocumentConfig)

    def job_key(self, store: GraphStore, documents: str = "") -> str:
        """Config, what is mined (seeds, or the documents' content and reading config), the LLM
        and the store: the same request on the same store finds the same build."""
        what: list[Any] = [documents, repr(self.doc_config)] if documents else [self.seeds, self.limit]
        llm = "none" if documents and not self.doc_config.llm else self.llm.identity()
        parts = [self.config.config_hash(), *what, llm, store.config.describe()]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]

    def build_dir(self, store: GraphStore, documents: str = "") -> BuildDir:
        if self.workdir:
            return BuildDir(self.workdir)
        return BuildDir.for_job(self.job_key(store, documents), self.root)


@dataclass(frozen=True)
class JobParts:
    """Parts a caller already has (an experiment running many jobs on one store shares them)."""

    embed: Embedder | None = None
    resolver: Resolver | None = None
    context: GraphContext | None = None
    evidence: BehaviourEvidence | None = None
    seeds: tuple[Entity, ...] | None = None  # start from these instead of the request's seed spec


@dataclass
class BuildResult:
    build: BuildDir
    run_id: str
    done_before: bool = False  # the job had finished already: nothing was asked or written
    resumed_after: int | None = None  # the round a resumed job continued after
    mining: MiningResult | None = None
    documents: DocumentResult | None = None
    report: dict[str, Any] = field(default_factory=dict)


def _resume_state(build: BuildDir, request: BuildRequest) -> JobState | None:
    if request.fresh:
        build.reset()
    if not build.has_state():
        return None
    state = build.load_state()
    if state.config_hash != request.config.config_hash():
        raise InputError(
            f"{build.path} holds a checkpoint of another config; pass --fresh or another --workdir"
        )
    return state


def run_build(
    store: GraphStore,
    request: BuildRequest,
    *,
    client: LLMClient | None = None,
    parts: JobParts = JobParts(),
    progress: StageProgress | None = None,
    log: Log | None = None,
) -> BuildResult:
    """Run (or resume, or skip) the build ``request`` describes on ``store``.

    ``client``: answer with this client instead of assembling ``request.llm`` (the caller owns it;
    no cache is added). ``log``: one-line notes for the user (resuming, reading evidence).
    """
    say = log or (lambda _line: None)
    if request.documents is not None:
        return _documents(store, request, client, parts, progress, say)
    build = request.build_dir(store)
    state = _resume_state(build, request)
    if state is not None and state.finished:
        return BuildResult(build, state.run_id, done_before=True)
    if client is None:
        request.llm.check()
        with open_client(request.llm) as opened:
            return _run(store, request, build, state, opened, parts, progress, say)
    return _run(store, request, build, state, client, parts, progress, say)


def _run(
    store: GraphStore,
    request: BuildRequest,
    build: BuildDir,
    state: JobState | None,
    client: LLMClient,
    parts: JobParts,
    progress: StageProgress | None,
    say: Log,
) -> BuildResult:
    asked = RecordingClient(client, build.transcript) if request.record else client
    job = MiningJob(
        store,
        asked,
        request.config,
        build,
        write=request.write,
        embed=parts.embed,
        resolver=parts.resolver,
        progress=progress,
        evidence=parts.evidence,
        context=parts.context,
    )
    resumed = state.round_done if state is not None else None
    if state is not None:
        say(f"resuming run {state.run_id} after round {state.round_done} ({build.path})")
    else:
        seeds = list(parts.seeds or load_seeds(store, request.seeds, request.limit, request.config.seed))
        if request.config.evidence and parts.evidence is None:
            say("reading behavioural evidence (searches, interactions) from the store …")
        note = json.dumps({"seeds": request.seeds, "limit": request.limit, "llm": request.llm.identity()})
        state = job.start(seeds, note=note)
    try:
        mined = run_job(job, state)
    except BaseException:
        if request.write:
            store.finish_run(state.run_id, ok=False)
        raise
    report = mined.report()
    report["llm"]["cost"] = round(mined.usage.cost(*request.price), 6)
    build.write_report(report)
    return BuildResult(build, state.run_id, resumed_after=resumed, mining=mined, report=report)


def _documents(
    store: GraphStore,
    request: BuildRequest,
    client: LLMClient | None,
    parts: JobParts,
    progress: StageProgress | None,
    say: Log,
) -> BuildResult:
    """A document build: read and check the documents first, then resume or start the job."""
    assert request.documents is not None
    docs = read_documents(request.documents)
    build = request.build_dir(store, docs.sha256())
    if request.fresh:
        build.reset()
    state = None
    if build.has_state():
        if not build.is_documents():
            raise InputError(f"{build.path} holds a build from seeds, not documents; pass another --workdir")
        state = DocState.from_json(build.load_raw())
        if state.config_hash != request.config.config_hash():
            raise InputError(f"{build.path} holds a checkpoint of another config; pass --fresh")
        if state.finished:
            return BuildResult(build, state.run_id, done_before=True)
    if not request.doc_config.llm:
        return _run_documents(store, request, build, docs, state, None, parts, progress, say)
    if client is None:
        with open_client(request.llm) as opened:
            return _run_documents(store, request, build, docs, state, opened, parts, progress, say)
    return _run_documents(store, request, build, docs, state, client, parts, progress, say)


def _run_documents(
    store: GraphStore,
    request: BuildRequest,
    build: BuildDir,
    docs: DocumentSet,
    state: DocState | None,
    client: LLMClient | None,
    parts: JobParts,
    progress: StageProgress | None,
    say: Log,
) -> BuildResult:
    asked = RecordingClient(client, build.transcript) if client is not None and request.record else client
    job = DocumentJob(
        store, asked, request.config, build, docs, request.doc_config, embed=parts.embed, progress=progress
    )
    resumed = state.round_done if state is not None else None
    if state is not None:
        say(f"resuming run {state.run_id} after round {state.round_done} ({build.path})")
        job.resume(state)
    else:
        note = json.dumps(
            {"documents": str(request.documents), "llm": request.llm.identity() if client else "none"}
        )
        state = job.start(note=note)
    try:
        mined = run_document_job(job, state)
    except BaseException:
        store.finish_run(state.run_id, ok=False)
        raise
    report = mined.report()
    report["llm"]["cost"] = round(mined.usage.cost(*request.price), 6)
    build.write_report(report)
    return BuildResult(build, state.run_id, resumed_after=resumed, documents=mined, report=report)
