"""Reviewing mined facts: the queue, each fact's provenance, and the reviewer's decisions.

The queue holds the edges PAIR wrote (relation types the schema marks ``mined``, edges that carry
``evidence``), least confident first, with their provenance parsed (prompt and response ids,
samples, votes, round; ``vote`` and ``relatedness``, the two parts of the score) and, for facts
mined from documents, the passages their ``spans`` cite (the chunk's text and the stated span).

A decision is written as the feedback `mokg feedback import` reads (JSON lines with ``head``,
``relation``, ``tail`` by NAME and ``label`` 1/0; the other fields are ours and ignored there):
each row is checked with that reader before it is written, the file is written aside and renamed,
and a second decision on the same triple replaces the first. A rejected fact may be *retired*: in a
run of its own (kind ``review``) its edge is removed from the graph with
:meth:`~graph.store.GraphStore.remove_edges`, which keeps the whole row as a before-image
(:mod:`graph.removal`), so `mokg runs delete RUN` puts the edge back with every property, its run
and its creation time. (Stores retired before that kept the edge with ``confidence`` 0 and the
retiring run in its ``evidence``; the queue still shows such a fact as retired.)
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from graph import files
from graph.errors import InputError
from graph.store import GraphStore

DECISIONS = ("accept", "reject", "skip")
LABELS = {"accept": 1, "reject": 0}
RETIRE_KIND = "review"
MAX_LIMIT = 500


@dataclass(frozen=True)
class ReviewFilter:
    """Args: relation: one mined relation type (None: all); min_conf, max_conf: the confidence
    band (inclusive); run: only the facts of this run; offset, limit: the page."""

    relation: str | None = None
    min_conf: float = 0.0
    max_conf: float = 1.0
    run: str | None = None
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_conf <= self.max_conf <= 1.0:
            raise InputError(
                f"the confidence band must satisfy 0 <= min_conf <= max_conf <= 1, "
                f"got {self.min_conf}..{self.max_conf}"
            )
        if self.offset < 0 or not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(f"offset must be >= 0 and limit 1..{MAX_LIMIT}, got {self.offset}, {self.limit}")


def fact_key(head_label: str, head: str, relation: str, tail_label: str, tail: str) -> str:
    """The key of one fact in the API: a JSON list, unambiguous whatever the ids hold."""
    return json.dumps([head_label, head, relation, tail_label, tail])


def parse_key(store: GraphStore, key: str) -> tuple[str, str, str, str, str]:
    """(head label, head id, relation, tail label, tail id) of a mined relation the schema allows."""
    try:
        parts = json.loads(key)
    except (TypeError, ValueError):
        parts = None
    if not isinstance(parts, list) or len(parts) != 5 or not all(isinstance(p, str) for p in parts):
        raise InputError(f"key {str(key)[:120]!r} is not a fact key: take it from GET /api/review")
    hl, hid, rel, tl, tid = parts
    store.schema.endpoints(rel, hl, tl)
    if not store.schema.rel(rel).mined:
        raise InputError(f"relation {rel} is not mined: only mined facts are reviewed")
    return hl, hid, rel, tl, tid


def _facts(store: GraphStore, flt: ReviewFilter, only: tuple[str, str] | None = None) -> pd.DataFrame:
    schema = store.schema
    rels = [schema.rel(flt.relation)] if flt.relation else schema.mined_relations()
    if not rels[0].mined:
        raise InputError(f"relation {rels[0].name} is not mined; choose one of the mined relation types")
    frames = []
    for rel in rels:
        for head_label, tail_label in rel.endpoints:
            if only is not None and (head_label, tail_label) != only:
                continue
            params = {
                "head_label": head_label,
                "rel_type": rel.name,
                "tail_label": tail_label,
                "min_confidence": flt.min_conf,
                "max_confidence": flt.max_conf,
                "run_id": flt.run or "",
            }
            df = store.run("mined_facts", params)
            if len(df):
                frames.append(df.assign(head_label=head_label, relation=rel.name, tail_label=tail_label))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["confidence", "relation", "head", "tail"], ignore_index=True)


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}


def _passages(store: GraphStore, spans: list[list[Any]]) -> list[dict[str, Any]]:
    """Each cited span with its chunk's text (and the stated part), document and title."""
    ids = sorted({str(s[0]) for s in spans})
    chunks = store.run("chunk_passages", {"chunk_ids": ids}) if ids else pd.DataFrame()
    by_id = {str(r["chunk"]): r for r in chunks.to_dict("records")} if len(chunks) else {}
    out = []
    for chunk, start, end in spans:
        row = by_id.get(str(chunk), {})
        text = row.get("passage") if isinstance(row.get("passage"), str) else None
        out.append(
            {
                "chunk": str(chunk),
                "start": int(start),
                "end": int(end),
                "text": text[int(start) : int(end)] if text else None,
                "passage": text,
                "document": _value(row.get("document")),
                "title": _value(row.get("title")),
            }
        )
    return out


def _item(store: GraphStore, row: dict[str, Any], decisions: dict[str, str]) -> dict[str, Any]:
    key = fact_key(row["head_label"], row["head"], row["relation"], row["tail_label"], row["tail"])
    evidence = _json(row.get("evidence"))
    spans = _json(row.get("spans"))
    retired = evidence.get("retired") if isinstance(evidence, dict) else None
    return {
        "key": key,
        "head": {"label": row["head_label"], "id": row["head"], "name": _value(row.get("head_name"))},
        "relation": row["relation"],
        "tail": {"label": row["tail_label"], "id": row["tail"], "name": _value(row.get("tail_name"))},
        "confidence": _value(row.get("confidence")),
        "vote": _value(row.get("vote")),
        "relatedness": _value(row.get("relatedness")),
        "run_id": _value(row.get("run_id")),
        "source": _value(row.get("source")),
        "evidence": evidence,
        "spans": _passages(store, spans) if isinstance(spans, list) else [],
        "decision": decisions.get(key),
        "retired_run": retired.get("run") if isinstance(retired, dict) else None,
    }


def review_queue(store: GraphStore, flt: ReviewFilter, feedback: Path) -> dict[str, Any]:
    """One page of the queue: ``total`` facts match the filter; ``items`` from ``offset``."""
    facts = _facts(store, flt)
    page = facts.iloc[flt.offset : flt.offset + flt.limit]
    decisions = read_decisions(feedback)
    items = [_item(store, {str(k): v for k, v in row.items()}, decisions) for row in page.to_dict("records")]
    return {"total": len(facts), "offset": flt.offset, "limit": flt.limit, "items": items}


# ---- decisions -----------------------------------------------------------------------------------------


def _rows(feedback: Path) -> list[dict[str, Any]]:
    if not feedback.exists():
        return []
    rows = []
    for line in feedback.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise InputError(f"{feedback} holds a line that is not JSON; fix or move the file") from None
    return rows


def read_decisions(feedback: Path) -> dict[str, str]:
    """Fact key → ``accept`` / ``reject`` of the decisions in the feedback file."""
    out = {}
    for row in _rows(feedback):
        if isinstance(row, dict) and "key" in row and row.get("label") in (0, 1):
            out[str(row["key"])] = "accept" if row["label"] == 1 else "reject"
    return out


def _importable(row: dict[str, Any]) -> bool:
    """Whether `mokg feedback import` reads the row (its names must be the ontology's)."""
    from mining.tuning.align import feedback_from_file

    with tempfile.TemporaryDirectory(prefix="mokg-feedback-") as tmp:
        path = Path(tmp) / "row.jsonl"
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
        try:
            feedback_from_file(path)
        except (InputError, ValueError):
            return False
    return True


def _fact(store: GraphStore, key: str) -> dict[str, Any]:
    hl, hid, rel, tl, tid = parse_key(store, key)
    facts = _facts(store, ReviewFilter(relation=rel), only=(hl, tl))
    match = facts[(facts["head"] == hid) & (facts["tail"] == tid)] if len(facts) else facts
    if not len(match):
        raise InputError(
            f"no mined fact {hl}:{hid} -[{rel}]-> {tl}:{tid} in the store (a retired fact comes back "
            "when the run that retired it is deleted: `mokg runs delete RUN`)"
        )
    return {str(k): v for k, v in match.iloc[0].to_dict().items()}


def _feedback_row(fact: dict[str, Any], key: str, decision: str) -> dict[str, Any]:
    return {
        "head": _value(fact.get("head_name")) or fact["head"],
        "relation": fact["relation"],
        "tail": _value(fact.get("tail_name")) or fact["tail"],
        "label": LABELS[decision],
        "key": key,
        "head_label": fact["head_label"],
        "head_id": fact["head"],
        "tail_label": fact["tail_label"],
        "tail_id": fact["tail"],
        "run_id": _value(fact.get("run_id")),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_feedback(feedback: Path, row: dict[str, Any]) -> None:
    """Append ``row`` or replace the earlier decision on the same triple; written aside, renamed."""
    same = (row["head"], row["relation"], row["tail"])
    kept = [
        r
        for r in _rows(feedback)
        if r.get("key") != row["key"] and (r.get("head"), r.get("relation"), r.get("tail")) != same
    ]
    files.write_text(feedback, "".join(json.dumps(r, sort_keys=True) + "\n" for r in [*kept, row]))


def retire(store: GraphStore, fact: dict[str, Any]) -> str:
    """Remove the fact's edge from the graph in a run of its own; the run's id."""
    evidence = _json(fact.get("evidence"))
    if isinstance(evidence, dict) and isinstance(evidence.get("retired"), dict):
        run = evidence["retired"].get("run")
        raise InputError(f"this fact was retired by run {run}; `mokg runs delete {run}` puts it back")
    name = f"{fact['head']} -[{fact['relation']}]-> {fact['tail']}"
    key = (str(fact["head_label"]), str(fact["relation"]), str(fact["tail_label"]))
    with store.run_context(RETIRE_KIND, note=f"retire the rejected fact {name}") as run_id:
        store.remove_edges(key, [(str(fact["head"]), str(fact["tail"]))], run_id=run_id)
    return run_id


def decide(store: GraphStore, feedback: Path, key: str, decision: str, retire_fact: bool) -> dict[str, Any]:
    """Record one decision (see the module docstring); what was written."""
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}, got {str(decision)[:40]!r}")
    if retire_fact and decision != "reject":
        raise InputError("only a rejected fact can be retired: send decision 'reject' with retire")
    fact = _fact(store, key)
    out: dict[str, Any] = {"decision": decision, "feedback_file": None, "retired_run": None}
    if decision == "skip":
        return out
    row = _feedback_row(fact, key, decision)
    importable = _importable(row)
    if not importable and not retire_fact:
        raise InputError(
            f"`mokg feedback import` knows heads and tails by the ontology's intent and category names; "
            f"{row['head']!r} -[{row['relation']}]-> {row['tail']!r} is not one it can read"
        )
    if retire_fact:
        out["retired_run"] = retire(store, fact)
    if importable:
        _write_feedback(feedback, row)
        out["feedback_file"] = str(feedback)
    return out
