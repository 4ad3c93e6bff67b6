"""A document build's checkpoint: its run, the documents' hash, the heads and links of every
chunk, the (chunk, head, relation) pairs and their progress (``BuildDir`` writes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mining.pipeline.types import Entity, Pair


@dataclass
class ChunkPair:
    chunk: str
    pair: Pair
    found: list[str] = field(default_factory=list)
    asked: int = 0
    done: bool = False


@dataclass
class DocState:
    run_id: str
    config_hash: str
    documents: str  # sha256 of the document set
    kind: str = "documents"
    recorded: dict[str, int] = field(default_factory=dict)  # rows written at start (empty: not yet)
    heads: dict[str, list[Entity]] = field(default_factory=dict)  # chunk id → heads
    links: dict[str, list[list[Any]]] = field(default_factory=dict)  # chunk → [label, id, name, start, end]
    round_done: int = 0
    pairs: list[ChunkPair] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    context: dict[str, list[list[str]]] = field(default_factory=dict)
    finished: bool = False

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DocState:
        def ent(d: dict[str, Any]) -> Entity:
            return Entity(**d)

        pairs = [
            ChunkPair(
                p["chunk"],
                Pair(ent(p["pair"]["head"]), p["pair"]["relation"], p["pair"]["tail_type"]),
                p["found"],
                p["asked"],
                p["done"],
            )
            for p in raw["pairs"]
        ]
        heads = {c: [ent(e) for e in es] for c, es in raw["heads"].items()}
        return cls(**{**raw, "pairs": pairs, "heads": heads})
