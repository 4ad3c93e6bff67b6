"""GVD, MemoryBank's English long-term dialogue set, with gold evidence turns per probing question.

"MemoryBank: Enhancing Large Language Models with Long-Term Memory" (Zhong et al., arXiv
2305.10250) released GVD: 15 users, 10 days of chats with an AI companion each, and 100 probing
questions asked afterwards. TiM ("Think-in-Memory", Liu et al., arXiv 2311.08719, §4) evaluates
on it. ``data/gvd/`` ships the two English source files unchanged (MIT, ``LICENSE-source``) and
``gvd_en_evidence.jsonl``: for each question the turn(s) that hold its answer, a short gold answer
and notes (``data/gvd/README.md`` says how they were made).

:func:`load_gvd` returns a :class:`~consumers.memory.dialogue.MemoryData` named ``gvd``:

- one :class:`Dialogue` per user (``user`` = ``name`` = the record's name, stripped: some keys of
  ``memory_bank_en.json`` carry stray spaces), one :class:`Session` per non-empty day, id
  ``"<user>/<date>"``, ``at`` the date (John Zhang's empty 2023-05-05 is skipped);
- one :class:`Probe` per question, in file order: evidence as turn ids
  (:func:`~consumers.memory.thought.turn_id`), ``alt_evidence`` as (alternative, evidence) pairs
  (Roland's duplicated 2023-04-30 session: its turns 4-7 repeat 0-3), ``answers = (answer,)``,
  ``kind`` from the note (``false_premise``, ``session`` for "what did we talk about on …", else
  ``fact``) and ``asked_at`` the day after the user's last session. John Zhang-4 is the one
  unanswerable question (its day is empty in the English file).

The probing questions file is read too, and each label's question must match it, so a stale or
edited label file is an error rather than a silent mismatch.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from consumers.memory.dialogue import Dialogue, MemoryData, Probe, Session, Turn
from consumers.memory.thought import turn_id
from graph.errors import InputError

GVD_DIR = Path(__file__).parent / "data" / "gvd"
HISTORY, QUESTIONS, EVIDENCE = "memory_bank_en.json", "probing_questions_en.jsonl", "gvd_en_evidence.jsonl"
FALSE_PREMISE, SESSION_LEVEL = "False premise:", "Session-level question"


def load_gvd(path: Path | None = None) -> MemoryData:
    """GVD from the folder ``path`` (default: the copy shipped in ``consumers/memory/data/gvd``)."""
    folder = Path(path) if path is not None else GVD_DIR
    try:
        history = json.loads(_read(folder / HISTORY))
        questions = [json.loads(line) for line in _read(folder / QUESTIONS).splitlines() if line.strip()]
        labels = [json.loads(line) for line in _read(folder / EVIDENCE).splitlines() if line.strip()]
        dialogues = tuple(_dialogue(record) for record in history.values())
        asked = {d.user: _next_day(d.sessions[-1].at) for d in dialogues}
        _check_questions(questions, labels)
        probes = tuple(_probe(label, asked) for label in labels)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(
            f"GVD files in {folder} are malformed ({type(exc).__name__}: {exc}); "
            f"restore them from the repository's consumers/memory/data/gvd"
        ) from None
    _check_evidence(dialogues, probes)
    return MemoryData(name="gvd", dialogues=dialogues, probes=probes)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read GVD file {path}: {exc.strerror or exc}; "
            f"pass the folder holding {HISTORY}, {QUESTIONS} and {EVIDENCE}"
        ) from None


def _dialogue(record: dict[str, Any]) -> Dialogue:
    user = str(record["name"]).strip()
    sessions = tuple(
        Session(
            id=f"{user}/{day}",
            at=day,
            turns=tuple(Turn(query=str(t["query"]), response=str(t["response"])) for t in turns),
        )
        for day, turns in sorted(record["history"].items())
        if turns
    )
    if not user or not sessions:
        raise ValueError(f"record {user!r} has no name or no sessions")
    return Dialogue(user=user, name=user, sessions=sessions)


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _check_questions(questions: list[dict[str, list[str]]], labels: list[dict[str, Any]]) -> None:
    """Every probing question labelled once, in order, with its exact text and qid."""
    expected = [
        (f"{user.strip()}-{i}", text)
        for row in questions
        for user, texts in row.items()
        for i, text in enumerate(texts)
    ]
    found = [(str(label["qid"]), str(label["question"])) for label in labels]
    if expected != found:
        pad = ("", "")
        wrong = next((e, f) for e, f in zip([*expected, pad], [*found, pad], strict=False) if e != f)
        raise ValueError(f"the labels do not match {QUESTIONS} (first difference: {wrong})")


def _probe(label: dict[str, Any], asked: dict[str, str]) -> Probe:
    user = str(label["user"]).strip()

    def ids(refs: list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(turn_id(f"{user}/{ref['date']}", int(ref["turn"])) for ref in refs)

    evidence, alternatives = ids(label["evidence"]), ids(label["alt_evidence"])
    if len(alternatives) not in (0, len(evidence)):
        raise ValueError(f"{label['qid']}: alt_evidence must pair one-to-one with evidence")
    note = str(label["note"])
    kind = "false_premise" if note.startswith(FALSE_PREMISE) else "fact"
    kind = "session" if note.startswith(SESSION_LEVEL) else kind
    answerable = bool(label["answerable"])
    return Probe(
        user=user,
        qid=str(label["qid"]),
        question=str(label["question"]),
        answers=(str(label["answer"]),) if answerable else (),
        evidence=evidence,
        answerable=answerable,
        alt_evidence=tuple(zip(alternatives, evidence, strict=False)),
        kind=kind,
        asked_at=asked[user],
    )


def _check_evidence(dialogues: tuple[Dialogue, ...], probes: tuple[Probe, ...]) -> None:
    turns = {d.user: {tid for tid, _, _ in d.turns()} for d in dialogues}
    for p in probes:
        missing = [
            t for t in (*p.evidence, *(a for a, _ in p.alt_evidence)) if t not in turns.get(p.user, ())
        ]
        if missing or (p.answerable and not p.evidence):
            raise InputError(
                f"GVD probe {p.qid} names turns its dialogue does not have ({', '.join(missing) or 'none'}); "
                f"restore {EVIDENCE} from the repository's consumers/memory/data/gvd"
            )
