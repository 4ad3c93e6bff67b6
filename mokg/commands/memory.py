"""TiM long-term memory (issue 18): `mokg chat`, `mokg memory show|forget`, `mokg eval memory`.

Heavy imports (spaCy, sentence-transformers, faiss) happen inside the commands.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from consumers.memory.config import MemoryConfig
from graph.errors import InputError

if TYPE_CHECKING:
    from mokg.commands import Groups

_MEMORY = MemoryConfig()


class Chat(StrEnum):
    none = "none"
    openai = "openai"
    local = "local"
    teacher = "teacher"


UserOpt = Annotated[str, typer.Option("--user", help="The user's id (a User node's id in the store).")]
IndexOpt = Annotated[str, typer.Option(help="Recall index: lsh (the paper's hashing) or exact (faiss).")]
ProbesOpt = Annotated[
    int, typer.Option(help="LSH buckets scanned per question (1: the paper; more: multi-probe).")
]
LLMOpt = Annotated[
    Chat,
    typer.Option(
        help="Who answers and post-thinks: none (offline: the reply is what the memory recalls; spaCy "
        "post-thinks), openai (any OpenAI-compatible endpoint: --base-url, --model), local (a GGUF/HF model "
        "path in --model), teacher (the world's simulated LLM: it only knows mining prompts, so it tests the "
        "loop over real HTTP, not answers)."
    ),
]
ThinkerOpt = Annotated[
    str,
    typer.Option(
        help="Who post-thinks: auto (the LLM when --llm is given, else spaCy), spacy (offline parse) or llm."
    ),
]
BaseUrlOpt = Annotated[str | None, typer.Option(help="--llm openai: the endpoint's /v1 URL.")]
ModelOpt = Annotated[str | None, typer.Option(help="--llm openai: model name; --llm local: model path.")]


def register(groups: Groups) -> None:
    groups.app.command("chat")(chat)
    groups["memory"].command("show")(show)
    groups["memory"].command("forget")(forget)
    groups.eval.command("memory")(eval_memory)


@contextlib.contextmanager
def _client(llm: Chat, base_url: str | None, model: str | None) -> Iterator[Any]:
    if llm is Chat.none:
        yield None
        return
    from mining.llm.assemble import LLMSpec, open_client

    with open_client(LLMSpec(choice=llm.value, base_url=base_url, model=model)) as client:
        yield client


def chat(
    user: UserOpt,
    replay: Annotated[
        str | None,
        typer.Option(
            help="Run a recorded conversation instead of reading the terminal: a .jsonl file with "
            "'query' per line (and 'session': a new value starts a new session; 'at': its ISO time), a text "
            "file, one message per line, '---' between sessions, or gvd:NAME (that GVD user's messages, a "
            "session per day)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="--replay: also write the transcript (JSON lines) here.")
    ] = None,
    add_user: Annotated[
        bool,
        typer.Option(
            help="Create the User node (and the store) if missing, e.g. to replay GVD into an empty store."
        ),
    ] = False,
    k: Annotated[int, typer.Option(help="Thoughts recalled per message.")] = 5,
    llm: LLMOpt = Chat.none,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    thinker: ThinkerOpt = "auto",
    index: IndexOpt = _MEMORY.index,
    probes: ProbesOpt = _MEMORY.probes,
    fill: Annotated[
        bool,
        typer.Option(
            help="LSH: probe further buckets until --k thoughts are found (off: only the question's own "
            "bucket, as in the paper, which may hold none in a small memory)."
        ),
    ] = True,
) -> None:
    """Talk to an assistant that remembers (TiM, arXiv 2311.08719).

    Each message: recall the user's most relevant thoughts, answer with them, then post-think the
    turn into head-relation-tail thoughts stored in the graph (Thought nodes that MENTION the user
    and the intents, categories and brands they name), forgetting what they contradict and merging
    thoughts that share head and relation. Every turn is one run: `mokg runs delete RUN` undoes it.
    An empty line or Ctrl-D ends an interactive session.

    Examples: mokg chat --user u_0000001;
    mokg chat --user u_0000001 --replay talk.txt --out transcript.jsonl;
    mokg --path /tmp/g chat --user Emily --add-user --replay gvd:Emily;
    mokg chat --user u_0000001 --llm openai --base-url http://127.0.0.1:8000/v1 --model smollm2
    """
    if k < 1:
        raise InputError(f"--k must be ≥ 1, got {k}")
    from consumers.memory.service import open_assistant, read_replay, reply_record
    from graph import files
    from mokg.context import open_store

    sessions = read_replay(replay) if replay is not None else None
    config = MemoryConfig(index=index, probes=probes, fill=fill)
    records: list[dict[str, Any]] = []
    with open_store(create=add_user) as store, _client(llm, base_url, model) as client:
        if store.node_table("User").query("id == @user").empty:
            if not add_user:
                raise InputError(f"no user {user!r} in the store; pick a User id or pass --add-user")
            with store.run_context("memory", note=f"chat user {user}") as run_id:
                store.upsert_nodes("User", [{"id": user, "name": user}], run_id=run_id)
        assistant = open_assistant(store, config, client, k, thinker)
        for replayed in sessions if sessions is not None else [None]:
            talk = assistant.conversation(user, at=replayed.at if replayed and replayed.at else None)
            for message in replayed.messages if replayed is not None else _terminal():
                reply = talk.say(message)
                typer.echo(f"assistant: {reply.answer}")
                records.append(reply_record(user, talk.session_id, reply))
    if out is not None:
        files.write_text(out, "".join(json.dumps(r) + "\n" for r in records))
        typer.echo(f"wrote {out} ({len(records)} turns)")


def _terminal() -> Iterator[str]:
    while True:
        try:
            line = input("you: ") if sys.stdin.isatty() else sys.stdin.readline()
        except EOFError:
            return
        if not line.strip():
            return
        yield line.strip()


def show(
    user: UserOpt,
    everything: Annotated[
        bool, typer.Option("--all", help="Also retired (forgotten) and merged thoughts.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """A user's memory: each thought with its status, time, the turns it came from and its run."""
    from consumers.memory.service import show as listing
    from mokg.context import open_store

    with open_store() as store:
        frame = listing(store, user, everything)
    if as_json:
        typer.echo(frame.to_json(orient="records", lines=True, force_ascii=False), nl=False)
    elif frame.empty:
        typer.echo(f"no {'thoughts' if everything else 'active thoughts'} for user {user!r}")
    else:
        typer.echo(frame.to_string(index=False, max_colwidth=70))


def forget(
    user: UserOpt,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the deletion cannot be undone.")] = False,
) -> None:
    """Delete a user's whole memory on request (right to be forgotten): every thought, its edges and
    every stored before-image of it. Unlike TiM's forget (which retires a contradicted thought and
    keeps it), this cannot be undone."""
    if not yes:
        raise InputError("deleting a user's memory cannot be undone; add --yes to confirm")
    from consumers.memory.service import forget as forget_memory
    from mokg.context import open_store

    with open_store() as store:
        removed = forget_memory(store, user)
    typer.echo(f"forgot {removed} thoughts of user {user!r}")


def eval_memory(
    datasets: Annotated[
        str,
        typer.Option(
            help="Comma-separated: gvd (MemoryBank's 15 users, 100 probing questions with gold evidence "
            "turns; shipped), world (dialogues generated from the world's hidden timelines: needs --world "
            "and a store ingested from it)."
        ),
    ] = "gvd",
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: tim (LSH, forget + merge), tim-multiprobe, tim-exact (the same memory "
            "through other indexes), tim-past (exact; retired thoughts recalled at --past-weight), "
            "tim-plain (no forget/merge; exact), raw-history (every turn embedded, exact top-k), "
            "whole-history (the newest turns that fit --window tokens), mem0 (mem0ai offline, same "
            "embedder; dev extra)."
        ),
    ] = "tim,tim-multiprobe,tim-exact,tim-plain,raw-history,whole-history",
    world: Annotated[
        Path | None, typer.Option(help="--datasets world: the world directory (hidden/ timelines).")
    ] = None,
    users: Annotated[int, typer.Option(help="--datasets world: users sampled (seeded).")] = 50,
    gvd_users: Annotated[
        int, typer.Option(help="--datasets gvd: only the first N users by name (0: all 15).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seeds the world sample and the LSH projections.")] = 0,
    window: Annotated[
        int, typer.Option(help="whole-history: prompt window in tokens (≈ 4 characters each).")
    ] = 2048,
    buckets: Annotated[int, typer.Option(help="LSH buckets per user (0: grows with the memory).")] = 0,
    multiprobe: Annotated[int, typer.Option(help="tim-multiprobe: buckets scanned.")] = 2,
    past_weight: Annotated[
        float, typer.Option(help="tim-past: a retired thought's cosine is scaled by this (0, 1].")
    ] = 0.8,
    merge_max: Annotated[int, typer.Option(help="Turns a merged thought may stand for.")] = _MEMORY.merge_max,
    llm: LLMOpt = Chat.none,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    thinker: ThinkerOpt = "auto",
    out: Annotated[
        Path,
        typer.Option(help="Directory for memory_<sets>.csv/.md/_probes.jsonl/_sizes.png and scratch stores."),
    ] = Path("mokg-data/eval/memory"),
) -> None:
    """Retrieval accuracy at k = 1, 5, 10 (evidence turns covered by what is recalled), answer
    accuracy, consistency over paraphrased questions and memory size over sessions, for TiM
    (arXiv 2311.08719) and the baselines, on the same dialogues in one command.

    TiM's memories are written to scratch stores under --out (every session a run), exactly as
    `mokg chat` writes to the real one. Without --llm the replies are extractive (the top 3 recalled
    items) and post-thinking is spaCy's; with --llm, an LLM answers and post-thinks, and mem0 uses
    it for its own fact extraction.

    Examples: mokg eval memory --out /tmp/m;
    mokg eval memory --datasets gvd,world --world WORLD --users 50 --methods tim,tim-exact,raw-history,mem0
    """
    from consumers.memory.run import Context, EvalConfig, command_line, run
    from consumers.memory.service import make_thinker
    from graph.progress import Progress
    from loaders.features import MiniLMEncoder

    config = EvalConfig(
        datasets=_names(datasets),
        methods=_names(methods),
        users=users,
        gvd_users=gvd_users,
        seed=seed,
        window_tokens=window,
        memory=MemoryConfig(buckets=buckets, seed=seed, merge_max=merge_max),
        multiprobe=multiprobe,
        past_weight=past_weight,
    )
    from consumers.memory.report import write_results
    from mokg.context import open_store

    if "world" in config.datasets and world is None:
        raise InputError("--datasets world needs --world DIR (the generated world: its hidden timelines)")
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store()) if "world" in config.datasets else None
        client = stack.enter_context(_client(llm, base_url, model))
        ctx = Context(MiniLMEncoder(), make_thinker(client, thinker), out / "work", source=store)
        if client is not None:
            ctx = _with_llm(ctx, client, base_url, model)
        board = stack.enter_context(Progress())
        results = run(config, ctx, world, progress=board.stages(""))
    from consumers.memory.report import markdown

    command = command_line(config)
    written = write_results(results, out, command)
    typer.echo(markdown(results, command))
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _with_llm(ctx: Any, client: Any, base_url: str | None, model: str | None) -> Any:
    from dataclasses import replace

    from consumers.memory.run import llm_answer

    mem0 = {"endpoint": base_url, "model": model} if base_url and model else {}
    return replace(ctx, answer=llm_answer(client), mem0=mem0)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())
