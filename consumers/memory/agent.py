"""The assistant that remembers: recall → answer → post-think, over any ``LLMClient``.

TiM's loop (arXiv 2311.08719, §3.1, Fig. 2): before answering, recall the thoughts relevant to the
question; answer with them in the prompt; after answering, post-think the turn into new thoughts
and organise the memory (:class:`.memory.TiMMemory`). With no LLM endpoint the assistant is
offline: its reply is what it recalled, most relevant first (an extractive answer), and the
post-thinker is the spaCy one, so the loop runs and writes real memory without any model call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consumers.memory.dialogue import Session, Turn
from consumers.memory.memory import Changes, TiMMemory
from consumers.memory.thought import Thought
from mining.llm.base import LLMClient

SYSTEM = (
    "You are a helpful assistant with a long-term memory of this user. Use the remembered facts "
    "when they answer the question; if they do not, say you do not remember. Answer briefly."
)
OFFLINE_EMPTY = "I don't remember anything about that yet."


@dataclass
class Reply:
    question: str
    answer: str
    recalled: list[tuple[Thought, float]]
    changes: Changes = field(default_factory=Changes)


def messages(question: str, facts: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages: the system rule, the remembered ``facts`` (one line each), the question."""
    memory = "\n".join(f"- {fact}" for fact in facts) or "- (nothing remembered)"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Remembered about me:\n{memory}\n\nQuestion: {question}"},
    ]


def prompt(question: str, recalled: Sequence[tuple[Thought, float]]) -> list[dict[str, str]]:
    """:func:`messages` with the recalled thoughts, oldest first, each with its time."""
    facts = sorted((t for t, _ in recalled), key=lambda t: t.at)
    return messages(question, [f"({t.at}) {t.text}" for t in facts])


def offline_answer(recalled: Sequence[tuple[Thought, float]], shown: int = 3) -> str:
    """The extractive reply: the top ``shown`` recalled thoughts."""
    if not recalled:
        return OFFLINE_EMPTY
    return "From what I remember: " + "; ".join(t.text for t, _ in recalled[:shown]) + "."


class Assistant:
    """One user's conversation with memory; ``client`` None = offline (see module doc)."""

    def __init__(self, memory: TiMMemory, client: LLMClient | None = None, k: int = 5) -> None:
        self.memory = memory
        self.client = client
        self.k = k
        self.sessions = 0

    def answer(self, question: str, recalled: Sequence[tuple[Thought, float]]) -> str:
        if self.client is None:
            return offline_answer(recalled)
        return self.client.complete(prompt(question, recalled), temperature=0.0, max_tokens=200)[0].strip()

    def conversation(self, user: str, session_id: str | None = None, at: str | None = None) -> Conversation:
        now = at or datetime.now(UTC).replace(microsecond=0).isoformat()
        self.sessions += 1
        return Conversation(self, user, session_id or f"{user}/chat-{now}-{self.sessions}", now)


class Conversation:
    """A session: each :meth:`say` recalls, answers, then post-thinks that turn in its own run."""

    def __init__(self, assistant: Assistant, user: str, session_id: str, at: str) -> None:
        self.assistant = assistant
        self.user = user
        self.session_id = session_id
        self.at = at
        self.turns: list[Turn] = []

    def say(self, question: str) -> Reply:
        memory = self.assistant.memory
        recalled = memory.recall(self.user, question, self.assistant.k)
        answer = self.assistant.answer(question, recalled)
        self.turns.append(Turn(question, answer))
        session = Session(self.session_id, self.at, tuple(self.turns))
        changes = memory.observe(self.user, session, turns=[len(self.turns) - 1])
        return Reply(question, answer, recalled, changes)

    def replay(self, questions: Sequence[str]) -> Iterator[Reply]:
        for q in questions:
            yield self.say(q)
