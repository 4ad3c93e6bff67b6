"""The records that flow between the mining stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entity:
    """A node the job knows: an existing store node, or a new ``Concept`` (``new=True``)."""

    id: str
    name: str
    type: str
    description: str = ""
    new: bool = False

    @property
    def ref(self) -> tuple[str, str]:
        return self.type, self.id


@dataclass(frozen=True)
class Pair:
    """A (head, relation) the job asks tails for, with the tail label the schema allows."""

    head: Entity
    relation: str
    tail_type: str


@dataclass
class Candidate:
    """A proposed triple (head, relation, tail) with what the samples and the embeddings said.

    ``votes`` counts the samples of one prompt that named the tail under any surface form
    (``surfaces``); ``vote`` = votes / samples is the self-consistency share.
    """

    head: Entity
    relation: str
    tail: Entity
    round: int
    samples: int
    votes: int = 0
    surfaces: set[str] = field(default_factory=set)
    prompt_ids: list[str] = field(default_factory=list)
    relatedness: float = 0.0
    score: float = 0.0
    judge: float | None = None
    accepted: bool = False
    spans: set[tuple[str, int, int]] = field(default_factory=set)  # (chunk id, start, end) from text

    @property
    def confidence(self) -> float:
        """The written confidence: the score, averaged with the judgement when there is one."""
        value = self.score if self.judge is None else (self.score + self.judge) / 2
        return min(max(value, 0.0), 1.0)

    @property
    def vote(self) -> float:
        return self.votes / self.samples if self.samples else 0.0

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.head.type, self.head.id, self.relation, self.tail.type, self.tail.id)
