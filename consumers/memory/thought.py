"""A thought: TiM's unit of long-term memory.

"Think-in-Memory: Recalling and Post-thinking Enable LLMs with Long-Term Memory" (Liu et al.,
arXiv 2311.08719), §3.2: after each answer the agent *post-thinks* and stores inductive thoughts,
each a head–relation–tail triple written as one sentence ("Emily enjoys painting"), so later
turns recall the conclusion instead of re-reasoning over raw history. Here a thought also keeps
where it came from (user, session, the turns, their time) and its status: TiM's forget retires a
thought rather than deleting it (``retired_at``, ``retired_by``), and merge replaces several
thoughts about one head by one.

A thought's id is a digest of its user and normalised text, so post-thinking the same sentence
twice writes one node (idempotent inserts).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from graph.errors import InputError

ACTIVE, RETIRED, MERGED = "active", "retired", "merged"
STATUSES = (ACTIVE, RETIRED, MERGED)


def normalise(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation: the form ids are taken over."""
    return re.sub(r"\s+", " ", text).strip().rstrip(".!?").lower()


def thought_id(user: str, text: str) -> str:
    """``th_`` + 16 hex digits of sha256(user, normalised text)."""
    digest = hashlib.sha256(f"{user}\x1f{normalise(text)}".encode()).hexdigest()
    return f"th_{digest[:16]}"


def turn_id(session: str, index: int) -> str:
    """``SESSION#INDEX``: one query/response pair of a conversation."""
    return f"{session}#{index}"


@dataclass(frozen=True)
class Thought:
    """One memory. ``turns`` are turn ids (:func:`turn_id`); ``at`` is the ISO time of the last
    turn it came from; ``mentions`` are KG node ids (``User``/``Intent``/``Item``/``Category`` …)
    it is about, written as ``MENTIONS`` edges."""

    user: str
    head: str
    relation: str
    tail: str
    session: str
    at: str
    turns: tuple[str, ...]
    text: str = ""
    status: str = ACTIVE
    retired_at: str = ""
    retired_by: str = ""
    mentions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", sentence(self.head, self.relation, self.tail))
        if not self.user or not self.text.strip():
            raise InputError("a thought needs a user and a non-empty head-relation-tail text")
        if self.status not in STATUSES:
            raise InputError(f"thought status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def id(self) -> str:
        return thought_id(self.user, self.text)

    def retire(self, at: str, by: str, status: str = RETIRED) -> Thought:
        """The same thought, retired (forget) or merged at ``at`` because of thought ``by``."""
        return replace(self, status=status, retired_at=at, retired_by=by)

    def row(self) -> dict[str, Any]:
        """The ``Thought`` node's properties (without the vector)."""
        return {
            "id": self.id,
            "name": self.text[:80],
            "text": self.text,
            "user": self.user,
            "head": self.head,
            "relation": self.relation,
            "tail": self.tail,
            "session": self.session,
            "at": self.at,
            "turns": json.dumps(list(self.turns)),
            "status": self.status,
            "retired_at": self.retired_at,
            "retired_by": self.retired_by,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], mentions: tuple[str, ...] = ()) -> Thought:
        """Inverse of :meth:`row` (a store row; missing parts read as empty)."""

        def text(key: str) -> str:
            value = row.get(key)
            return value if isinstance(value, str) else ""

        return cls(
            user=text("user"),
            head=text("head"),
            relation=text("relation"),
            tail=text("tail"),
            session=text("session"),
            at=text("at"),
            turns=tuple(json.loads(text("turns") or "[]")),
            text=text("text"),
            status=text("status") or ACTIVE,
            retired_at=text("retired_at"),
            retired_by=text("retired_by"),
            mentions=mentions,
        )


def sentence(head: str, relation: str, tail: str) -> str:
    """The triple as one sentence: ``"Emily" "enjoys" "painting"`` → ``"Emily enjoys painting"``."""
    return " ".join(part.strip() for part in (head, relation, tail) if part and part.strip())
