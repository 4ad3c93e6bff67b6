"""A build's work directory: the one class that knows its files (like ``loaders.world.layout.WorldDir``).

::

    DIR/checkpoint.json     the job's state after its last finished round (replaced atomically)
    DIR/candidates.jsonl    every candidate of every finished round, accepted or not, with scores
    DIR/transcript.jsonl    every request and answer (LightPAIR's distillation corpus)
    DIR/report.json         the final report of the process that finished the job
    DIR/documents.json      a document build's source: its path, content hash and counts

Builds live under ``ROOT`` (``mokg-data/mining``) as ``build-<job key>`` unless ``--workdir``
says otherwise; :meth:`BuildDir.find` locates a build by its run id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graph.errors import InputError
from mining.pipeline.checkpoint import JobState, state_from_json
from mining.pipeline.types import Candidate

ROOT = Path("mokg-data/mining")
STATE = "checkpoint.json"
CANDIDATES = "candidates.jsonl"
TRANSCRIPT = "transcript.jsonl"
REPORT = "report.json"
DOCUMENTS = "documents.json"


def _write_aside(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class BuildDir:
    path: Path

    @classmethod
    def for_job(cls, key: str, root: Path = ROOT) -> BuildDir:
        return cls(root / f"build-{key}")

    @classmethod
    def find(cls, run_id: str, root: Path = ROOT) -> BuildDir:
        """The build under ``root`` whose checkpoint holds ``run_id``."""
        for state in sorted(root.glob(f"*/{STATE}")):
            if json.loads(state.read_text()).get("run_id") == run_id:
                return cls(state.parent)
        raise InputError(f"no build of run {run_id} under {root}; pass its --workdir")

    @classmethod
    def existing(cls, path: Path) -> BuildDir:
        """``path`` as a build directory, or an error if it holds no build."""
        build = cls(path)
        if not build.checkpoint.exists() and not build.transcript.exists():
            raise InputError(f"{path} is not a `mokg build` work dir (no {STATE} or {TRANSCRIPT})")
        return build

    @property
    def checkpoint(self) -> Path:
        return self.path / STATE

    @property
    def candidates(self) -> Path:
        return self.path / CANDIDATES

    @property
    def transcript(self) -> Path:
        return self.path / TRANSCRIPT

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def documents(self) -> Path:
        return self.path / DOCUMENTS

    # ---- the job state ----------------------------------------------------------------------
    def has_state(self) -> bool:
        return self.checkpoint.exists()

    def load_raw(self) -> dict[str, Any]:
        """The checkpoint's JSON (``kind`` is ``documents`` for a document build)."""
        if not self.checkpoint.exists():
            raise InputError(f"no checkpoint in {self.path}: nothing to resume (start a new `mokg build`)")
        try:
            raw = json.loads(self.checkpoint.read_text())
        except ValueError as exc:
            raise InputError(
                f"{self.checkpoint} is not a readable checkpoint ({exc}); pass --fresh to start over"
            ) from None
        if not isinstance(raw, dict) or "run_id" not in raw:
            raise InputError(f"{self.checkpoint} is not a readable checkpoint; pass --fresh to start over")
        return raw

    def is_documents(self) -> bool:
        return self.has_state() and self.load_raw().get("kind") == "documents"

    def load_state(self) -> JobState:
        """The checkpoint of an entity build (``mining/pipeline/job.py``)."""
        raw = self.load_raw()
        try:
            return state_from_json(raw)
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"{self.checkpoint} is not a readable checkpoint ({exc}); pass --fresh to start over"
            ) from None

    def save_state(self, state: Any) -> None:
        """Replace the checkpoint with ``state`` (a job's state dataclass) atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        _write_aside(self.checkpoint, json.dumps(asdict(state), indent=1, sort_keys=True))

    def reset(self) -> None:
        """Forget an abandoned job (``--fresh``): its checkpoint, candidates, transcript and report."""
        for path in (self.checkpoint, self.candidates, self.transcript, self.report, self.documents):
            path.unlink(missing_ok=True)

    def run_id(self) -> str:
        return str(self.load_raw()["run_id"]) if self.has_state() else ""

    # ---- candidates --------------------------------------------------------------------------
    def append_candidates(self, candidates: list[Candidate]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.candidates.open("a") as out:
            for c in candidates:
                out.write(json.dumps(candidate_row(c), sort_keys=True) + "\n")

    def truncate_candidates(self, round_done: int) -> None:
        """Drop candidate rows of rounds after ``round_done`` (left by a round that was interrupted)."""
        if self.candidates.exists():
            keep = [r for r in self.candidate_rows() if r["round"] <= round_done]
            _write_aside(self.candidates, "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))

    def candidate_rows(self) -> Iterator[dict[str, Any]]:
        """Every recorded candidate (nothing when the build recorded none yet)."""
        if not self.candidates.exists():
            return
        with self.candidates.open() as rows:
            for line in rows:
                if line.strip():
                    yield json.loads(line)

    # ---- report and document source -----------------------------------------------------------
    def write_report(self, report: dict[str, Any]) -> None:
        _write_aside(self.report, json.dumps(report, indent=2, sort_keys=True, default=str))

    def read_json(self, path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return data

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_aside(path, json.dumps(data, indent=1, sort_keys=True))


def candidate_row(c: Candidate) -> dict[str, Any]:
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
    if c.spans:
        row["spans"] = [list(s) for s in c.spans]
    return row
