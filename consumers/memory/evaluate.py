"""Scoring a memory method on a data set: retrieval, answers, consistency, memory size.

- Retrieval accuracy at k (TiM, arXiv 2311.08719, §4.2 "retrieval accuracy"): for each answerable
  probe, the share of its evidence turns covered by the top-``k`` recalled items (a thought covers
  the turns it was post-thought from; a raw-history item is one turn; an alternative evidence turn
  counts as the turn it duplicates), averaged over probes (``recall@k``), and the share of probes
  with at least one evidence turn covered (``hit@k``).
- Answer accuracy: the reply (an LLM's, or offline the extractive reply: the top 3 recalled items'
  text) holds at least half the content words of one gold answer (lower case, scikit-learn's
  English stop words removed; a gold of stop words only, such as ``no``, must occur as a word).
  Offline, yes/no questions are not scored: an extractive reply cannot say no.
- Consistency: the share of paraphrase groups (probes with one ``group``, asked in different
  words) whose members all recall the same top-1 item; and the share whose members are all right.
- Memory size: active items per user after each session, mean over users (thoughts for TiM, turns
  for raw history), with and without forget/merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import mean

from consumers.memory.dialogue import MemoryData, Probe

# one recalled item: (item id, score, turn ids it covers, text)
Item = tuple[str, float, tuple[str, ...], str]


@dataclass
class ProbeResult:
    qid: str
    user: str
    kind: str
    group: str
    evidence: tuple[str, ...]
    covered: list[tuple[str, ...]]  # per recalled item, in rank order
    top: str
    answer: str
    correct: bool | None  # None: the probe has no gold answer


@dataclass
class MethodResult:
    dataset: str
    method: str
    probes: list[ProbeResult]
    sizes: list[float] = field(default_factory=list)  # mean active items per user after session i
    seconds: float = 0.0
    note: str = ""

    def recall_at(self, k: int) -> float:
        rows = [recall(p, k) for p in self.probes if p.evidence]
        return mean(rows) if rows else float("nan")

    def hit_at(self, k: int) -> float:
        rows = [recall(p, k) > 0 for p in self.probes if p.evidence]
        return mean(rows) if rows else float("nan")

    def answer_accuracy(self) -> float:
        rows = [p.correct for p in self.probes if p.correct is not None]
        return mean(rows) if rows else float("nan")

    def turns_per_item(self, k: int) -> float:
        """Mean turns a recalled item stands for, over the top ``k`` (1 for raw history)."""
        rows = [len(c) for p in self.probes for c in p.covered[:k]]
        return mean(rows) if rows else float("nan")

    def consistency(self) -> tuple[float, float]:
        """(same top-1 item, all right) over paraphrase groups."""
        groups: dict[str, list[ProbeResult]] = {}
        for p in self.probes:
            if p.group:
                groups.setdefault(p.group, []).append(p)
        groups = {g: m for g, m in groups.items() if len(m) > 1}
        if not groups:
            return float("nan"), float("nan")
        same = mean(len({m.top for m in members}) == 1 for members in groups.values())
        right = mean(all(m.correct for m in members) for members in groups.values())
        return same, right


def recall(p: ProbeResult, k: int) -> float:
    """Share of ``p``'s evidence turns covered by its top-``k`` items."""
    seen = {turn for item in p.covered[:k] for turn in item}
    return sum(e in seen for e in p.evidence) / len(p.evidence)


YES_NO = frozenset({"yes", "no"})


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def is_correct(answer: str, golds: Sequence[str], *, extractive: bool = False) -> bool | None:
    """``answer`` holds half the content words of one of ``golds`` (module doc); None where there
    is no gold, or a yes/no gold and an ``extractive`` reply."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    golds = [g for g in golds if words(g)]
    if not golds or (extractive and any(" ".join(words(g)) in YES_NO for g in golds)):
        return None
    said = set(words(answer))
    for gold in golds:
        content = [w for w in words(gold) if w not in ENGLISH_STOP_WORDS] or words(gold)
        if sum(w in said for w in content) >= len(content) / 2:
            return True
    return False


def score_probe(
    probe: Probe, items: Sequence[Item], answer: str, *, extractive_reply: bool = True
) -> ProbeResult:
    """One probe's result from the items its method recalled (rank order) and its reply."""
    alt = dict(probe.alt_evidence)
    covered = [tuple(dict.fromkeys(alt.get(t, t) for t in turns)) for _, _, turns, _ in items]
    return ProbeResult(
        qid=probe.qid,
        user=probe.user,
        kind=probe.kind,
        group=probe.group,
        evidence=probe.evidence if probe.answerable else (),
        covered=covered,
        top=items[0][0] if items else "",
        answer=answer,
        correct=is_correct(answer, probe.answers, extractive=extractive_reply) if probe.answerable else None,
    )


def extractive(items: Sequence[Item], shown: int = 3) -> str:
    """The offline reply: the top ``shown`` items' text."""
    return " | ".join(text for _, _, _, text in items[:shown])


def evaluate_probes(
    data: MemoryData,
    recall_fn: Callable[[Probe, int], list[Item]],
    k: int,
    answer_fn: Callable[[Probe, list[Item]], str] | None = None,
) -> list[ProbeResult]:
    """Every probe of ``data``: recall ``k`` items, answer (extractive by default), score."""
    out = []
    for probe in data.probes:
        items = recall_fn(probe, k)
        answer = answer_fn(probe, items) if answer_fn else extractive(items)
        out.append(score_probe(probe, items, answer, extractive_reply=answer_fn is None))
    return out
