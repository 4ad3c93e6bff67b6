"""Conversations and probing questions, the data every memory method reads.

A :class:`Dialogue` is one user's sessions in time order, each a list of turns (a user query and
the assistant's response). A :class:`Probe` is a question asked after the sessions, with its gold
answer and the turns that hold it (evidence, scored as recall@k), as in GVD ("MemoryBank:
Enhancing Large Language Models with Long-Term Memory", arXiv 2305.10250) and TiM's evaluation
(arXiv 2311.08719, §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.memory.thought import turn_id


@dataclass(frozen=True)
class Turn:
    query: str
    response: str


@dataclass(frozen=True)
class Session:
    """``id`` is unique over a data set (``USER/DATE`` for GVD); ``at`` its ISO date or time."""

    id: str
    at: str
    turns: tuple[Turn, ...]

    def turn_ids(self) -> list[str]:
        return [turn_id(self.id, i) for i in range(len(self.turns))]


@dataclass(frozen=True)
class Dialogue:
    """One user's conversation history; ``user`` is the store's ``User`` id where there is one."""

    user: str
    name: str
    sessions: tuple[Session, ...]

    def turns(self) -> list[tuple[str, str, Turn]]:
        """(turn id, session time, turn) for every turn, in time order."""
        return [(turn_id(s.id, i), s.at, t) for s in self.sessions for i, t in enumerate(s.turns)]


@dataclass(frozen=True)
class Probe:
    """A probing question. ``evidence`` and ``alt_evidence`` are turn ids (an alternative counts
    as the evidence turn it duplicates); ``answers`` are accepted gold answers (any one is right);
    ``group`` ties paraphrases of one question together (consistency); ``kind`` is free text such
    as ``fact``, ``changed`` (the answer changed over time: what forget must handle), ``session``,
    ``false_premise``; ``mentions`` are KG node ids the gold answer names (world data)."""

    user: str
    qid: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    answerable: bool = True
    alt_evidence: tuple[tuple[str, str], ...] = ()  # (alternative turn id, evidence turn id)
    group: str = ""
    kind: str = "fact"
    asked_at: str = ""
    mentions: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class MemoryData:
    """A data set: dialogues and probes; ``name`` as printed in tables (``gvd``, ``world``)."""

    name: str
    dialogues: tuple[Dialogue, ...]
    probes: tuple[Probe, ...]

    def dialogue(self, user: str) -> Dialogue:
        for d in self.dialogues:
            if d.user == user:
                return d
        raise KeyError(user)
