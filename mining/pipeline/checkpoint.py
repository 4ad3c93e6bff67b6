"""The job's state after each finished round, so a killed ``mokg build`` resumes.

``BuildDir`` (``builddir.py``) replaces ``checkpoint.json`` atomically after every round (and
after the round's write has committed), so it always describes a consistent prefix of the run. A
resumed run reloads it and starts at the next round; the LLM cache makes any re-asked prompt of the
interrupted round free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mining.pipeline.types import Entity, Pair


@dataclass
class PairState:
    pair: Pair
    found: list[str] = field(default_factory=list)  # names of accepted tails, in order
    asked: int = 0
    done: bool = False


@dataclass
class JobState:
    run_id: str
    config_hash: str
    round_done: int = 0
    seeds: list[str] = field(default_factory=list)  # ids of the round-1 heads
    frontier: list[Entity] = field(default_factory=list)
    visited: list[Entity] = field(default_factory=list)
    pairs: list[PairState] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    context: dict[str, list[list[str]]] = field(default_factory=dict)  # GraphContext.to_json()
    finished: bool = False
    evidence: dict[str, list[list[Any]]] = field(default_factory=dict)  # BehaviourEvidence.to_json()


def _entity(d: dict[str, Any]) -> Entity:
    return Entity(**d)


def _pair(d: dict[str, Any]) -> Pair:
    return Pair(_entity(d["head"]), d["relation"], d["tail_type"])


def state_from_json(raw: dict[str, Any]) -> JobState:
    """A :class:`JobState` from its ``asdict`` JSON (``BuildDir.load_state`` reads the file)."""
    return JobState(
        run_id=raw["run_id"],
        config_hash=raw["config_hash"],
        round_done=raw["round_done"],
        seeds=raw["seeds"],
        frontier=[_entity(e) for e in raw["frontier"]],
        visited=[_entity(e) for e in raw["visited"]],
        pairs=[PairState(_pair(p["pair"]), p["found"], p["asked"], p["done"]) for p in raw["pairs"]],
        accepted=raw["accepted"],
        stats=raw["stats"],
        context=raw["context"],
        finished=raw["finished"],
        evidence=raw.get("evidence", {}),
    )
