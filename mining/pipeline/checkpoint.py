"""The job's state after each finished round, on disk, so a killed ``mokg build`` resumes.

``DIR/checkpoint.json`` is replaced atomically after every round (and after the round's write has
committed), so it always describes a consistent prefix of the run. A resumed run reloads it and
starts at the next round; the LLM cache makes any re-asked prompt of the interrupted round free.
``DIR/candidates.jsonl`` gets every candidate of every finished round (accepted or not), the
open-format record of what the LLM proposed and how it was scored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError
from mining.pipeline.types import Candidate, Entity, Pair

STATE = "checkpoint.json"
CANDIDATES = "candidates.jsonl"


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


def save(directory: Path, state: JobState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1, sort_keys=True))
    os.replace(tmp, directory / STATE)


def load(directory: Path) -> JobState:
    path = directory / STATE
    if not path.exists():
        raise InputError(f"no checkpoint in {directory}: nothing to resume (start a new `mokg build`)")
    raw = json.loads(path.read_text())
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


def append_candidates(directory: Path, candidates: list[Candidate]) -> None:
    with (directory / CANDIDATES).open("a") as out:
        for c in candidates:
            row = {
                "round": c.round,
                "head_type": c.head.type,
                "head": c.head.id,
                "relation": c.relation,
                "tail_type": c.tail.type,
                "tail": c.tail.id,
                "tail_name": c.tail.name,
                "surfaces": sorted(c.surfaces),
                "votes": c.votes,
                "samples": c.samples,
                "relatedness": round(c.relatedness, 6),
                "score": round(c.score, 6),
                "accepted": c.accepted,
                "prompt": c.prompt_ids[0] if c.prompt_ids else "",
            }
            out.write(json.dumps(row, sort_keys=True) + "\n")


def truncate_candidates(directory: Path, round_done: int) -> None:
    """Drop candidate rows of rounds after ``round_done`` (left by a round that was interrupted)."""
    path = directory / CANDIDATES
    if path.exists():
        keep = [line for line in path.read_text().splitlines() if json.loads(line)["round"] <= round_done]
        path.write_text("".join(line + "\n" for line in keep))
