"""LightPAIR's distillation corpus: a mining run's transcript turned into task examples.

Each transcript line is one PAIR prompt and the teacher's ``n`` raw answers. The targets are the
*teacher's* answers (never the ground truth), as soft labels: the share of parsed samples that
said it.

- ``relation_filter`` → :class:`RelationExample`: head text → share of samples choosing each
  relation offered for the head's label.
- ``entity_expansion`` → :class:`ExpansionExample`: (head, relation) → share of samples naming
  each tail of the closed candidate set (surface forms mapped to canonical names; unknown names
  are dropped and counted); tails "found in earlier rounds" are listed and are not targets.
- ``judge_triple`` → :class:`JudgeExample`: (head, relation, tail) → mean belief
  (``confidence`` if valid else ``1 − confidence``), as the pipeline's aggregation reads it.

Malformed samples are skipped (``mining.prompts.parse_answer`` after the pipeline's repair);
lines are de-duplicated by (prompt id, responses), and the samples of re-asks of one prompt pooled.
Heads listed in ``hold_out`` are removed from every task, so evaluation seeds are never heads here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore
from mining.llm.structured import repair
from mining.pipeline.builddir import BuildDir
from mining.prompts import (
    ExpansionAnswer,
    JudgementAnswer,
    Message,
    RelationFilterAnswer,
    parse_answer,
    read_facts,
)

FOUND = re.compile(r"^Found in earlier rounds \(do not repeat; add others\): (.*)\.$", re.M)
ABOUT = re.compile(r'^About the entity: "(.*)"$', re.M)
UP_TO = re.compile(r"up to (\d+)")
EVIDENCE = re.compile(
    r"^Platform evidence, (.+?) \(share of its search sessions, sessions; lift\): (.*)\.$", re.M
)
EVIDENCE_ITEM = re.compile(r'"([^"]*)" ([0-9.]+) \((\d+); lift ([0-9.]+)\)')
TAIL_LABELS = ("Category", "Intent")


def norm(name: str) -> str:
    """A name's matching key: case-folded letters and digits only."""
    return re.sub(r"[^0-9a-z]+", " ", name.casefold()).strip()


def relation_meaning(relation: str) -> str:
    rel = SCHEMA.rel(relation)
    return f"{relation.lower().replace('_', ' ')}: {rel.description.split(' (e.g.')[0]}"


def head_text(name: str, type_: str, description: str = "") -> str:
    """The model's input for an entity (relation filter; first half of an expansion query)."""
    return f"{type_}: {name}. {description}".strip()


def query_text(name: str, type_: str, description: str, relation: str) -> str:
    """The bi-encoder's query side for (head, relation)."""
    return f"{head_text(name, type_, description)} | {relation_meaning(relation)}"


def judge_text(head: str, head_type: str, relation: str, tail: str) -> str:
    """The judgement classifier's input for a triple."""
    return f"{head_type}: {head} | {relation_meaning(relation)} | {tail}"


@dataclass(frozen=True)
class PromptView:
    """What LightPAIR reads from a PAIR prompt: the facts block plus description, found tails, k."""

    task: str
    head: str
    head_type: str
    description: str = ""
    relation: str = ""
    tail_type: str = ""
    candidate: str = ""
    found: tuple[str, ...] = ()
    k: int = 10
    evidence: tuple[tuple[str, str, float, int, float], ...] = ()  # (kind, tail, share, sessions, lift)

    @classmethod
    def of(cls, messages: Sequence[Message]) -> PromptView:
        facts = read_facts(messages)
        text = "\n".join(m["content"] for m in messages if m["role"] == "user")
        about, found, k = ABOUT.search(text), FOUND.search(text), UP_TO.search(text)
        names = tuple(x.strip().strip('"') for x in found.group(1).split('", "')) if found else ()
        return cls(
            task=facts.get("Task", ""),
            head=facts.get("Entity", ""),
            head_type=facts.get("Entity type", ""),
            description=about.group(1) if about else "",
            relation=facts.get("Relation", ""),
            tail_type=facts.get("Tail type", ""),
            candidate=facts.get("Candidate tail", ""),
            found=tuple(n for n in names if n),
            k=int(k.group(1)) if k else 10,
            evidence=tuple(
                (kind, name, float(share), int(count), float(lift))
                for kind, items in EVIDENCE.findall(text)
                for name, share, count, lift in EVIDENCE_ITEM.findall(items)
            ),
        )

    def evidence_for(self, relation: str) -> tuple[tuple[Any, ...], ...]:
        """The evidence items that speak for ``relation`` (:func:`relation_evidence`)."""
        return relation_evidence(self.evidence, relation)


def relation_evidence(
    items: Sequence[tuple[str, str, float, int, float]], relation: str
) -> tuple[tuple[Any, ...], ...]:
    """The behavioural evidence items (kind, tail, share, sessions, lift) that speak for
    ``relation``, as LightPAIR reads them: (normalised tail name, share, sessions, lift), with a 5th
    field, the slot, for the relation's second kind onwards (so corpora mined before a relation had
    two kinds keep their items and hash)."""
    from mining.pipeline.evidence import KINDS

    slots = [k for k, r in KINDS.items() if r == relation]
    out: list[tuple[Any, ...]] = []
    for k, n, s, c, x in items:
        if KINDS.get(k) == relation:
            slot = slots.index(k)
            out.append((norm(n), s, float(c), x) + ((slot,) if slot else ()))
    return tuple(out)


@dataclass(frozen=True)
class RelationExample:
    head: str
    head_type: str
    text: str
    targets: dict[str, float]  # relation → share of samples choosing it (offered relations only)


@dataclass(frozen=True)
class ExpansionExample:
    head: str
    head_type: str
    relation: str
    tail_type: str
    query: str
    found: tuple[str, ...]
    targets: dict[str, float]  # canonical tail name → share of samples naming it
    evidence: tuple[tuple[Any, ...], ...] = ()  # (tail, share, sessions, lift[, slot]) for the relation


@dataclass(frozen=True)
class JudgeExample:
    head: str
    text: str
    target: float  # mean belief that the triple is true


@dataclass
class Corpus:
    """The three tasks' examples, the closed tail sets, and what was dropped."""

    relations: list[RelationExample] = field(default_factory=list)
    expansions: list[ExpansionExample] = field(default_factory=list)
    judgements: list[JudgeExample] = field(default_factory=list)
    tails: dict[str, list[str]] = field(default_factory=dict)  # label → canonical names
    stats: Counter[str] = field(default_factory=Counter)

    def heads(self) -> set[str]:
        rows: Iterable[RelationExample | ExpansionExample | JudgeExample]
        rows = [*self.relations, *self.expansions, *self.judgements]
        return {r.head for r in rows}

    def to_json(self) -> str:
        data = {
            "relations": [asdict(r) for r in self.relations],
            # (an empty evidence field is left out, so corpora mined without evidence keep their hash)
            "expansions": [_without_empty_evidence(asdict(r)) for r in self.expansions],
            "judgements": [asdict(r) for r in self.judgements],
            "tails": self.tails,
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Corpus:
        data = json.loads(text)
        return cls(
            relations=[RelationExample(**r) for r in data["relations"]],
            expansions=[
                ExpansionExample(
                    **{
                        **r,
                        "found": tuple(r["found"]),
                        "evidence": tuple(tuple(x) for x in r.get("evidence", ())),
                    }
                )
                for r in data["expansions"]
            ],
            judgements=[JudgeExample(**r) for r in data["judgements"]],
            tails=data["tails"],
        )


def _without_empty_evidence(row: dict[str, Any]) -> dict[str, Any]:
    if not row.get("evidence"):
        row.pop("evidence", None)
    return row


def offered_relations(head_type: str) -> list[str]:
    """The mined relations a relation-filter prompt offers for ``head_type`` (those with a tail label)."""
    from mining.pipeline.relation_filter import tail_type

    return [r.name for r in SCHEMA.mined_relations() if tail_type(r.name, head_type)]


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """Transcript lines, one per prompt id, with the responses of repeated lines pooled."""
    if not path.exists():
        raise InputError(f"no transcript at {path}; pass the work dir of a `mokg build` run")
    rows: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        mark = (row["prompt_id"], json.dumps(row["responses"]))
        if mark in seen:
            continue
        seen.add(mark)
        if row["prompt_id"] in rows:
            rows[row["prompt_id"]]["responses"] += row["responses"]
        else:
            rows[row["prompt_id"]] = dict(row)
    return list(rows.values())


def _parsed(task: str, texts: Sequence[str], stats: Counter[str]) -> list[Any]:
    out = []
    for text in texts:
        for attempt in (text, repair(text)):
            try:
                out.append(parse_answer(task, attempt))
                break
            except ValueError:
                continue
        else:
            stats[f"{task}: malformed"] += 1
    return out


def surface_map(build: BuildDir) -> dict[tuple[str, str], str]:
    """(label, normalised surface) → canonical name, from a run's resolved ``candidates.jsonl``."""
    out = {}
    for row in build.candidate_rows():
        for surface in row.get("surfaces", []):
            out[row["tail_type"], norm(surface)] = row["tail_name"]
    return out


def build_corpus(
    rows: Sequence[dict[str, Any]],
    tails: dict[str, list[str]],
    surfaces: dict[tuple[str, str], str] | None = None,
    hold_out: Iterable[str] = (),
) -> Corpus:
    """The examples of ``rows`` (transcript lines), without heads named in ``hold_out``."""
    held = {norm(h) for h in hold_out}
    names = {(label, norm(n)): n for label, ns in tails.items() for n in ns}
    names.update(surfaces or {})
    corpus = Corpus(tails={k: sorted(set(v)) for k, v in tails.items()})
    for row in sorted(rows, key=lambda r: r["prompt_id"]):
        view = PromptView.of(row["messages"])
        if norm(view.head) in held:
            corpus.stats["held-out head"] += 1
            continue
        answers = _parsed(view.task, row["responses"], corpus.stats) if view.task in TASKS else []
        if not answers:
            corpus.stats[f"{view.task or 'other'}: no usable answer"] += 1
            continue
        TASKS[view.task](view, answers, names, corpus)
    return corpus


def _relation(view: PromptView, answers: list[Any], names: dict[tuple[str, str], str], c: Corpus) -> None:
    offered = offered_relations(view.head_type)
    votes: Counter[str] = Counter()
    for a in answers:
        assert isinstance(a, RelationFilterAnswer)
        votes.update({x.relation.strip().upper() for x in a.relations} & set(offered))
    targets = {r: votes[r] / len(answers) for r in offered}
    text = head_text(view.head, view.head_type, view.description)
    c.relations.append(RelationExample(view.head, view.head_type, text, targets))


def _expansion(view: PromptView, answers: list[Any], names: dict[tuple[str, str], str], c: Corpus) -> None:
    if view.tail_type not in c.tails:
        c.stats[f"expansion: tail type {view.tail_type} not modelled"] += 1
        return
    found = {norm(f) for f in view.found}
    votes: Counter[str] = Counter()
    for a in answers:
        assert isinstance(a, ExpansionAnswer)
        named = set()
        for t in a.tails:
            canonical = names.get((view.tail_type, norm(t.name)))
            if canonical is None:
                c.stats["expansion: unknown tail dropped"] += 1
            elif norm(canonical) not in found and norm(canonical) != norm(view.head):
                named.add(canonical)
        votes.update(named)
    targets = {t: v / len(answers) for t, v in sorted(votes.items())}
    query = query_text(view.head, view.head_type, view.description, view.relation)
    c.expansions.append(
        ExpansionExample(
            view.head,
            view.head_type,
            view.relation,
            view.tail_type,
            query,
            view.found,
            targets,
            view.evidence_for(view.relation),
        )
    )


def _judge(view: PromptView, answers: list[Any], names: dict[tuple[str, str], str], c: Corpus) -> None:
    beliefs = []
    for a in answers:
        assert isinstance(a, JudgementAnswer)
        beliefs.append(a.confidence if a.valid else 1.0 - a.confidence)
    text = judge_text(view.head, view.head_type, view.relation, view.candidate)
    c.judgements.append(JudgeExample(view.head, text, sum(beliefs) / len(beliefs)))


TASKS = {
    "relation_filter": _relation,
    "entity_expansion": _expansion,
    "judge_triple": _judge,
}


def store_tails(store: GraphStore) -> dict[str, list[str]]:
    """The closed tail sets: names of every Category and Intent in the store, so a store loaded
    from real data is served with its own vocabulary."""
    out = {}
    for label in ("Category", "Intent"):
        table = store.node_table(label, ["name"])
        out[label] = sorted({str(n) for n in table["name"].fillna(table["id"])}) if len(table) else []
    return out
