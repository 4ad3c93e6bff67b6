"""``mokg eval memory``: every method on every data set, in one command (``run(store, config)``).

Methods (:data:`METHODS`):

- ``tim``: TiM (arXiv 2311.08719) with the paper's single-bucket LSH recall, forget and merge;
- ``tim-multiprobe``: the same memory, recall scanning ``--probes`` buckets (2 by default);
- ``tim-exact``: the same memory, exact recall (faiss flat inner product);
- ``tim-past``: the same memory, exact, retired thoughts recalled too with their cosine scaled by
  ``--past-weight`` (an extension: TiM never recalls a forgotten thought);
- ``tim-plain``: TiM's thoughts without forget and merge, read exactly (beside ``tim-exact``: what
  organising the memory buys);
- ``raw-history``: every turn embedded, exact top-k (the paper's "repeated reasoning" setting);
- ``whole-history``: the newest turns that fit the prompt window (no retrieval);
- ``mem0``: the maintained library mem0ai, offline, same embedder (:mod:`.baselines`).

TiM's memories are written to a scratch embedded store under ``work`` (one per organising
setting), every session a run, as ``mokg chat`` writes to the real one; ``tim``, ``tim-exact``
and ``tim-multiprobe`` read one memory through different indexes. For the world, the scratch store
first gets the world's users and its intents, categories and brands, so thoughts link to them.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from statistics import mean
from typing import Any

from consumers.memory.config import MemoryConfig
from consumers.memory.dialogue import MemoryData, Probe
from consumers.memory.evaluate import Item, MethodResult, evaluate_probes
from consumers.memory.link import LINKED_LABELS, Linker
from consumers.memory.memory import TiMMemory
from consumers.memory.postthink import PostThinker
from graph.errors import InputError
from graph.progress import StageProgress
from graph.store import GraphStore, StoreConfig, open_store
from loaders.features import TextEncoder

TIM = ("tim", "tim-multiprobe", "tim-exact", "tim-past", "tim-plain")
METHODS = (*TIM, "raw-history", "whole-history", "mem0")
DATASETS = ("gvd", "world")
KS = (1, 5, 10)


@dataclass(frozen=True)
class EvalConfig:
    datasets: tuple[str, ...] = ("gvd",)
    methods: tuple[str, ...] = (
        "tim",
        "tim-multiprobe",
        "tim-exact",
        "tim-plain",
        "raw-history",
        "whole-history",
    )
    users: int = 50  # world: users sampled
    gvd_users: int = 0  # gvd: the first N users by name (0: all 15)
    seed: int = 0
    window_tokens: int = 2048  # whole-history: the prompt window
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    multiprobe: int = 2
    past_weight: float = 0.8  # tim-past: retired thoughts recalled, their cosine × this

    def __post_init__(self) -> None:
        for name, given, known in (("data set", self.datasets, DATASETS), ("method", self.methods, METHODS)):
            bad = [g for g in given if g not in known]
            if bad or not given:
                raise InputError(
                    f"unknown {name} {', '.join(bad) or '(none)'}; use any of {', '.join(known)}"
                )
        if not 0.0 < self.past_weight <= 1.0:
            raise InputError(f"--past-weight must be within (0, 1], got {self.past_weight}")
        if self.users < 1 or self.window_tokens < 1 or self.multiprobe < 2 or self.gvd_users < 0:
            raise InputError("--users and --window must be ≥ 1, --gvd-users ≥ 0 and --multiprobe ≥ 2")


def command_line(config: EvalConfig) -> str:
    args = ["--datasets", ",".join(config.datasets), "--methods", ",".join(config.methods)]
    if "world" in config.datasets:
        args += ["--world", "WORLD", "--users", str(config.users)]
    if config.gvd_users and "gvd" in config.datasets:
        args += ["--gvd-users", str(config.gvd_users)]
    args += ["--seed", str(config.seed)]
    return "mokg eval memory " + " ".join(shlex.quote(a) for a in args)


@dataclass
class Context:
    """What the methods share: the encoder, the post-thinker, the scratch folder, an LLM client."""

    encoder: TextEncoder
    thinker: PostThinker
    work: Path
    source: GraphStore | None = None  # the world's store: users and entities to link
    answer: Callable[[Probe, list[Item]], str] | None = None
    mem0: dict[str, Any] = field(default_factory=dict)  # endpoint/model for mem0's infer=True


def run_tim(data: MemoryData, ctx: Context, config: EvalConfig, methods: list[str]) -> list[MethodResult]:
    """The TiM rows of ``methods`` on ``data``: one memory per organising setting, read through
    each index."""
    results = []
    settings = [("tim-plain", False)] if "tim-plain" in methods else []
    if any(m in methods for m in ("tim", "tim-multiprobe", "tim-exact", "tim-past")):
        settings.insert(0, ("tim", True))
    for name, organise in settings:
        cfg = replace(config.memory, forget=organise, merge=organise and config.memory.merge)
        start = time.perf_counter()
        with _scratch_store(ctx, data, name) as store:
            memory = TiMMemory(store, ctx.encoder, ctx.thinker, cfg, _linker(ctx))
            sizes = _observe_all(memory, data)
            built = time.perf_counter() - start
            readers = (
                {"tim-plain": replace(cfg, index="exact")}
                if name == "tim-plain"
                else {
                    "tim": cfg,
                    "tim-multiprobe": replace(cfg, probes=config.multiprobe),
                    "tim-exact": replace(cfg, index="exact"),
                    "tim-past": replace(cfg, index="exact", past_weight=config.past_weight),
                }
            )
            for method, read_cfg in readers.items():
                if method not in methods:
                    continue
                reader = TiMMemory(store, ctx.encoder, ctx.thinker, read_cfg)
                t0 = time.perf_counter()
                probes = evaluate_probes(data, _tim_recall(reader), max(KS), ctx.answer)
                results.append(
                    MethodResult(data.name, method, probes, sizes, built + time.perf_counter() - t0)
                )
    return results


def run_baseline(data: MemoryData, ctx: Context, config: EvalConfig, method: str) -> MethodResult:
    """A baseline row: built per dialogue, every turn an item (its text: query then response)."""
    from consumers.memory import baselines

    start = time.perf_counter()
    texts = {tid: baselines.turn_text(t) for d in data.dialogues for tid, _, t in d.turns()}
    built: dict[str, Any] = {}
    shared = (
        baselines.Mem0Peer.open_memory(ctx.work / "mem0" / data.name, **ctx.mem0)
        if method == "mem0"
        else None
    )
    for d in data.dialogues:
        if method == "raw-history":
            built[d.user] = baselines.RawHistory.build(d, ctx.encoder)
        elif method == "whole-history":
            built[d.user] = baselines.WholeHistory.build(d, max_tokens=config.window_tokens)
        else:
            built[d.user] = baselines.Mem0Peer.build(d, memory=shared, **ctx.mem0)

    def recall(probe: Probe, k: int) -> list[Item]:
        return [(i, s, turns, texts[turns[0]]) for i, s, turns in built[probe.user].recall(probe.question, k)]

    probes = evaluate_probes(data, recall, max(KS), ctx.answer)
    sizes = [
        mean(len(d.sessions[i].turns) for d in data.dialogues if len(d.sessions) > i)
        for i in range(_longest(data))
    ]
    return MethodResult(data.name, method, probes, list(accumulate(sizes)), time.perf_counter() - start)


def first_users(data: MemoryData, n: int) -> MemoryData:
    """``data`` with its first ``n`` users by name and their probes (``n`` = 0: all)."""
    if n <= 0:
        return data
    keep = sorted(d.user for d in data.dialogues)[:n]
    return MemoryData(
        data.name,
        tuple(d for d in data.dialogues if d.user in keep),
        tuple(p for p in data.probes if p.user in keep),
    )


def _longest(data: MemoryData) -> int:
    return max((len(d.sessions) for d in data.dialogues), default=0)


def run(
    config: EvalConfig,
    ctx: Context,
    world_dir: Path | None = None,
    progress: StageProgress | None = None,
) -> list[MethodResult]:
    """Every method of ``config`` on every data set (module doc)."""
    from consumers.memory.gvd import load_gvd
    from consumers.memory.world_dialogues import WorldDialogueConfig, generate_world_dialogues

    if "world" in config.datasets and world_dir is None:
        raise InputError("--datasets world needs --world DIR (the generated world: its hidden timelines)")
    ctx.work.mkdir(parents=True, exist_ok=True)
    results: list[MethodResult] = []
    tick = (
        progress("memory: data set × method", len(config.datasets) * len(config.methods))
        if progress
        else _none
    )
    for name in config.datasets:
        if name == "gvd":
            data, source = first_users(load_gvd(), config.gvd_users), None
        else:
            assert world_dir is not None
            data = generate_world_dialogues(
                world_dir, WorldDialogueConfig(users=config.users, seed=config.seed)
            )
            source = ctx.source
        local = replace(ctx, source=source)
        tim = [m for m in config.methods if m in TIM]
        if tim:
            results += run_tim(data, local, config, tim)
            for _ in tim:
                tick()
        for method in (m for m in config.methods if m not in TIM):
            results.append(run_baseline(data, local, config, method))
            tick()
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(results, key=lambda r: (config.datasets.index(r.dataset), order[r.method]))


def llm_answer(client: Any) -> Callable[[Probe, list[Item]], str]:
    """Replies by ``client`` from the recalled items (TiM's answer step, :mod:`.agent`'s prompt)."""
    from consumers.memory.agent import messages

    def answer(probe: Probe, items: list[Item]) -> str:
        asked = messages(probe.question, [text for _, _, _, text in items[:5]])
        return str(client.complete(asked, temperature=0.0, max_tokens=100)[0])

    return answer


def _none() -> None:
    return None


def _tim_recall(memory: TiMMemory) -> Callable[[Probe, int], list[Item]]:
    def recall(probe: Probe, k: int) -> list[Item]:
        return [(t.id, s, t.turns, t.text) for t, s in memory.recall(probe.user, probe.question, k)]

    return recall


def _observe_all(memory: TiMMemory, data: MemoryData) -> list[float]:
    """Observe every session in order; mean active thoughts per user after session i."""
    per_session: dict[int, list[int]] = {}
    for dialogue in data.dialogues:
        for i, session in enumerate(dialogue.sessions):
            memory.observe(dialogue.user, session, who=dialogue.name)
            per_session.setdefault(i, []).append(len(memory.thoughts(dialogue.user)))
    return [mean(per_session[i]) for i in sorted(per_session)]


def _linker(ctx: Context) -> Linker | None:
    return Linker.from_store(ctx.source) if ctx.source is not None else None


@contextlib.contextmanager
def _scratch_store(ctx: Context, data: MemoryData, name: str) -> Iterator[GraphStore]:
    """A fresh embedded store ``work/store-<data>-<name>``; for linked data, the source's users
    and entities copied in first (one setup run)."""
    path = ctx.work / f"store-{data.name}-{name}"
    shutil.rmtree(path, ignore_errors=True)
    with open_store(StoreConfig(backend="embedded", path=path), create=True) as store:
        if ctx.source is not None:
            users = {d.user for d in data.dialogues}
            with store.run_context("memory-eval-setup") as run_id:
                table = ctx.source.node_table("User", ["name"])
                store.upsert_nodes(
                    "User", _rows(table[table["id"].isin(users)].to_dict("records")), run_id=run_id
                )
                for label in LINKED_LABELS:
                    rows = _rows(ctx.source.node_table(label, ["name"]).to_dict("records"))
                    store.upsert_nodes(label, rows, run_id=run_id)
        yield store


def _rows(rows: list[dict[Any, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": str(r["id"]), "name": r.get("name") if isinstance(r.get("name"), str) else ""} for r in rows
    ]
