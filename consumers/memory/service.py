"""What the memory commands call: the assistant over a store, a replay file, show and forget.

``mokg chat`` (interactive, or ``--replay FILE``), ``mokg memory show`` and ``mokg memory
forget`` are thin wrappers of :func:`open_assistant`, :func:`read_replay`, :func:`show` and
:func:`forget`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from consumers.memory.agent import Assistant, Reply
from consumers.memory.config import MemoryConfig
from consumers.memory.link import Linker
from consumers.memory.memory import TiMMemory
from consumers.memory.postthink import PostThinker
from consumers.memory.store import read_thoughts
from graph.errors import InputError
from graph.store import GraphStore

SESSION_BREAK = "---"


THINKERS = ("auto", "spacy", "llm")


def make_thinker(client: Any = None, kind: str = "auto") -> PostThinker:
    """``llm``: the LLM post-thinker over ``client``; ``spacy``: the offline one; ``auto``: the LLM's
    when there is a client."""
    from consumers.memory.postthink import LLMPostThinker, SpacyPostThinker

    if kind not in THINKERS:
        raise InputError(f"unknown post-thinker {kind!r}; use one of {', '.join(THINKERS)}")
    if kind == "llm" and client is None:
        raise InputError("--thinker llm needs an LLM: pass --llm openai|local|teacher")
    return LLMPostThinker(client) if client is not None and kind != "spacy" else SpacyPostThinker()


def open_assistant(
    store: GraphStore, config: MemoryConfig, client: Any = None, k: int = 5, thinker: str = "auto"
) -> Assistant:
    """The assistant over ``store``'s memory (see :func:`make_thinker`), linked to its KG."""
    from loaders.features import MiniLMEncoder

    memory = TiMMemory(
        store, MiniLMEncoder(), make_thinker(client, thinker), config, Linker.from_store(store)
    )
    return Assistant(memory, client, k)


@dataclass(frozen=True)
class ReplaySession:
    """Messages of one recorded session; ``at`` (ISO time) may be empty: the time of the replay."""

    messages: tuple[str, ...]
    at: str = ""


def read_replay(source: str) -> list[ReplaySession]:
    """A recorded conversation as sessions of user messages. ``gvd:NAME``: that GVD user's queries
    (shipped data), one session per day at its date. A ``.jsonl`` file: one object per line with
    ``query`` and optionally ``session`` (a new value starts a new session) and ``at``. Any other
    file: plain text, one message per line, a line ``---`` between sessions. Blank lines are skipped."""
    if source.startswith("gvd:"):
        return _gvd_replay(source.removeprefix("gvd:"))
    path = Path(source)
    if not path.is_file():
        raise InputError(
            f"replay file {path} does not exist; give a .jsonl or .txt conversation, or gvd:NAME"
        )
    sessions: list[tuple[list[str], str]] = [([], "")]
    last: object = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                row = json.loads(line)
                query, session, at = str(row["query"]), row.get("session"), str(row.get("at") or "")
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}:{n}: expected a JSON object with a 'query' string") from None
            if session != last and sessions[-1][0]:
                sessions.append(([], ""))
            last = session
            sessions[-1] = (sessions[-1][0] + [query], sessions[-1][1] or at)
        elif line.strip() == SESSION_BREAK:
            sessions.append(([], ""))
        else:
            sessions[-1][0].append(line.strip())
    out = [ReplaySession(tuple(m), at) for m, at in sessions if m]
    if not out:
        raise InputError(f"replay file {path} holds no messages")
    return out


def _gvd_replay(name: str) -> list[ReplaySession]:
    from consumers.memory.gvd import load_gvd

    data = load_gvd()
    names = sorted(d.user for d in data.dialogues)
    if name not in names:
        raise InputError(f"GVD has no user {name!r}; it has: {', '.join(names)}")
    dialogue = data.dialogue(name)
    return [ReplaySession(tuple(t.query for t in s.turns), s.at) for s in dialogue.sessions]


def reply_record(user: str, session: str, reply: Reply) -> dict[str, Any]:
    """One replayed turn as a JSON-lines record."""
    return {
        "user": user,
        "session": session,
        "query": reply.question,
        "answer": reply.answer,
        "recalled": [{"id": t.id, "text": t.text, "score": round(s, 4)} for t, s in reply.recalled],
        "inserted": [t.text for t in reply.changes.inserted],
        "retired": [t.text for t in reply.changes.retired],
        "merged": [t.text for t in reply.changes.merged],
        "run_id": reply.changes.run_id,
    }


def show(store: GraphStore, user: str, everything: bool = False) -> pd.DataFrame:
    """``user``'s thoughts, newest first: id, status, time, text, the turns it came from and the run
    that wrote it (retired and merged ones too with ``everything``)."""
    stored = read_thoughts(store, user)
    rows = [
        {
            "id": t.id,
            "status": t.status,
            "at": t.at,
            "text": t.text,
            "turns": ",".join(t.turns),
            "retired_by": t.retired_by,
            "run": run,
        }
        for t, run in zip(stored.thoughts, stored.run_ids, strict=True)
        if everything or t.status == "active"
    ]
    return pd.DataFrame(rows, columns=["id", "status", "at", "text", "turns", "retired_by", "run"])


def forget(store: GraphStore, user: str) -> int:
    """Delete ``user``'s whole memory (right to be forgotten); the number of thoughts removed."""
    from consumers.memory.store import forget_user

    if not user.strip():
        raise InputError("--user must name a user")
    return forget_user(store, user)
