"""What the teacher knows about the world's documents, and its answers to passage-grounded prompts.

A world's ``hidden/documents/statements.parquet`` records every fact each document states, with
the span of the sentence that states it (``loaders/world/documents.py``). Given a passage, the
teacher finds the statement sentences the passage contains and answers from those, through the
same noise model as its other answers (``noise.py``):

- ``doc_relation_filter``: the relations the passage states for the head (each relation of the
  head label's menu flips with ``relation_confusion``);
- ``doc_entity_expansion``: the tails the passage states for (head, relation), round 1 at most
  ``first_round_share`` of them (at least one), later rounds the rest; omission, per-sample
  re-draws and surface variants as for the KB answers; hallucinated tails are drawn first from
  other names of the tail label the passage mentions (its distractors), then from the KB's near
  misses. Each tail carries a ``quote``: the stating sentence (a hallucinated tail: the sentence
  it appears in, or nothing);
- ``doc_judge_triple``: valid iff the passage states the triple; confidence 0.9 for a stated
  triple, 0.75 for a tail the passage names without stating the fact, 0.9 for any other tail;
  then ``judge_noise`` as for ``judge_triple``.

A head the passage states nothing about gets no relations and no tails (no guessing: the passage
is there to read).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from mining.teacher.knowledge import key

if TYPE_CHECKING:
    from mining.teacher.respond import Ask

CLEAN = re.compile(r"[\r\n\t\"]+")
STARTS = re.compile(r"[.!?]\s+")
PREFIX = 40


@dataclass(frozen=True)
class Statement:
    relation: str
    head: str  # name
    head_type: str
    tail: str  # name
    tail_type: str
    sentence: str  # cleaned as prompts clean passages


def clean(text: str) -> str:
    return CLEAN.sub(" ", text).strip()


class PassageKnowledge:
    """Statements indexed by the first characters of their sentence, and names per label."""

    def __init__(self, statements: list[Statement], names: dict[str, list[str]]) -> None:
        self.by_prefix: dict[str, list[Statement]] = defaultdict(list)
        for st in statements:
            self.by_prefix[st.sentence[:PREFIX]].append(st)
        self.names = {label: sorted(set(ns), key=lambda n: (-len(n), n)) for label, ns in names.items()}

    @classmethod
    def load(cls, world: Path) -> PassageKnowledge | None:
        """From a world directory (None when it has no documents)."""
        facts = world / "hidden/documents/statements.parquet"
        docs_file = world / "visible/documents/documents.jsonl"
        if not facts.exists() or not docs_file.exists():
            return None
        texts = {d["id"]: d["text"] for d in map(json.loads, docs_file.read_text().splitlines())}
        names = _names(world)
        rows = cast(list[dict[str, Any]], pd.read_parquet(facts).to_dict("records"))
        out = []
        for r in rows:
            (hl, hid), (tl, tid) = str(r["head"]).split(":", 1), str(r["tail"]).split(":", 1)
            sentence = clean(texts[str(r["doc"])][int(r["start"]) : int(r["end"])])
            out.append(Statement(str(r["relation"]), names[hl][hid], hl, names[tl][tid], tl, sentence))
        by_label: dict[str, list[str]] = {label: list(ids.values()) for label, ids in names.items()}
        return cls(out, by_label)

    def stated(self, passage: str) -> list[Statement]:
        """The statements whose sentence the (cleaned) passage contains, in passage order."""
        starts = [0, *(m.end() for m in STARTS.finditer(passage))]
        out: list[Statement] = []
        for start in starts:
            for st in self.by_prefix.get(passage[start : start + PREFIX], []):
                if passage.startswith(st.sentence, start) and st not in out:
                    out.append(st)
        return out

    def mentioned(self, passage: str, label: str) -> list[str]:
        """Names of ``label`` the passage contains (case-blind), longest first."""
        low = passage.casefold()
        return [n for n in self.names.get(label, []) if n.casefold() in low]


def _names(world: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for label in ("Item", "Category", "Intent", "Brand"):
        path = world / "visible/nodes" / f"{label}.parquet"
        if path.exists():
            frame = pd.read_parquet(path, columns=["id", "name"])
            out[label] = dict(zip(frame["id"].astype(str), frame["name"].astype(str), strict=True))
    return out


def about(statements: list[Statement], head: str, head_type: str) -> list[Statement]:
    return [s for s in statements if key(s.head) == key(head) and s.head_type == head_type]


def sentence_with(passage: str, name: str) -> str:
    """The sentence of ``passage`` that names ``name`` (empty when none does)."""
    low, at = passage.casefold(), passage.casefold().find(name.casefold())
    if at < 0:
        return ""
    begin = max(low.rfind(". ", 0, at) + 2, 0) if low.rfind(". ", 0, at) >= 0 else 0
    end = low.find(". ", at)
    return passage[begin : end + 1 if end >= 0 else len(passage)]


def truth_by_relation(statements: list[Statement]) -> dict[str, list[Statement]]:
    out: dict[str, list[Statement]] = defaultdict(list)
    for st in statements:
        if all(key(o.tail) != key(st.tail) for o in out[st.relation]):
            out[st.relation].append(st)
    return out


def as_json_tails(rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"tails": [{"name": n, "type": t, "quote": q} for n, t, q in rows]}


# ---- the answers (dispatched from respond.TASKS) ------------------------------------------------
def _stated_about(ask: Ask) -> list[Statement]:
    kb = ask.kb.passages
    if kb is None:
        return []
    return about(kb.stated(ask.facts.get("Passage", "")), *ask.head)


def relation_filter(ask: Ask) -> dict[str, Any]:
    from mining.teacher.respond import menu

    truth = truth_by_relation(_stated_about(ask))
    if not truth:
        return {"relations": []}
    d, rate = ask.draws, ask.noise.relation_confusion
    options = menu(ask.head[1])
    chosen = [r for r in options if (r in truth) != (d.shared.random() < rate)]
    chosen = [r for r in options if (r in chosen) != (d.sample.random() < d.extra)]
    reasons = {
        r: f"the passage says: {truth[r][0].sentence[:80]}" if r in truth else "it seems implied"
        for r in chosen
    }
    return {"relations": [{"relation": r, "reason": reasons[r]} for r in chosen]}


def entity_expansion(ask: Ask) -> dict[str, Any]:
    from mining.teacher.noise import insert_at_random
    from mining.teacher.respond import found_in, hallucinate, keep, round_of, vary

    relation, tail_type = ask.facts.get("Relation", ""), ask.facts.get("Tail type", "")
    true = [s for s in truth_by_relation(_stated_about(ask)).get(relation, []) if s.tail_type == tail_type]
    if not true:
        return {"tails": []}
    if round_of(ask) == 1:
        true = true[: max(1, int(ask.noise.first_round_share * len(true) + 0.5))]
    found = {key(x) for x in found_in(ask.text)}
    eligible = [s for s in true if key(s.tail) not in found]
    kept = keep(eligible, ask)
    quotes = {key(s.tail): s.sentence for s in kept}
    passage, kb = ask.facts.get("Passage", ""), ask.kb.passages
    exclude = found | {key(s.tail) for s in true}
    pool = [n for n in (kb.mentioned(passage, tail_type) if kb else []) if key(n) not in exclude]
    head = ask.kb.find(*ask.head)
    if head is not None:
        pool += ask.kb.guess_pool(head.name, head.type, relation)
    wrong = hallucinate(list(dict.fromkeys(pool)), len(eligible), exclude, ask)
    quotes |= {key(w): sentence_with(passage, w) for w in wrong}
    names = insert_at_random([s.tail for s in kept], wrong, ask.draws.shared)
    rows = [(vary(n, ask), tail_type, quotes[key(n)]) for n in names[: ask.k()]]
    return as_json_tails(rows)


def judge_triple(ask: Ask) -> dict[str, Any]:
    relation, tail = ask.facts.get("Relation", ""), ask.facts.get("Candidate tail", "")
    stated = any(s.relation == relation and key(s.tail) == key(tail) for s in _stated_about(ask))
    named = tail.casefold() in ask.facts.get("Passage", "").casefold()
    valid, conf = (True, 0.9) if stated else (False, 0.75 if named else 0.9)
    gen, rate = ask.draws.sample, ask.noise.judge_noise
    if gen.random() < rate:
        valid, conf = not valid, 0.5 + (conf - 0.5) / 2
    conf += gen.uniform(-0.2, 0.2) * rate
    return {"valid": valid, "confidence": round(min(1.0, max(0.0, conf)), 3)}
