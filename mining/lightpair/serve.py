"""LightPAIR's answers to a batch of PAIR prompts (what ``LightPAIRClient`` runs in its worker thread)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from graph.schema import SCHEMA
from mining.lightpair import checkpoint
from mining.lightpair.corpus import PromptView, head_text, judge_text, norm, offered_relations, query_text
from mining.lightpair.model import LightPAIR, evidence_matrix
from mining.prompts import Message

MEMO_CAP = 50_000
MINED = {r.name for r in SCHEMA.mined_relations()}


class Engine:
    """A loaded checkpoint with an embedding memo (a text is encoded once per process)."""

    def __init__(
        self, model: LightPAIR, meta: checkpoint.CheckpointMeta, tails: dict[str, torch.Tensor]
    ) -> None:
        self.model, self.meta, self.tails = model, meta, tails
        self.names = meta.tails
        self.memo: dict[str, torch.Tensor] = {}
        self.index: dict[str, dict[str, int]] = {}
        self.keys: dict[str, list[str]] = {}
        self.about: dict[tuple[str, str], str] = {}
        self.seen: dict[tuple[str, str], tuple[tuple[str, str, float, int, float], ...]] = {}

    @classmethod
    def load(cls, path: Path, precision: str = "fp32") -> Engine:
        """The checkpoint at ``path``, its encoder in ``precision`` (:meth:`LightPAIR.serve_in`)."""
        model, meta, tails = checkpoint.load(path)
        model.serve_in(precision)
        return cls(model, meta, tails)

    def _embed(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.memo})
        if len(self.memo) + len(todo) > MEMO_CAP:
            self.memo.clear()
        if todo:
            vectors = self.model.embed(todo)
            self.memo.update(zip(todo, vectors, strict=True))

    def answer(
        self,
        prompts: Sequence[Sequence[Message]],
        samples: Sequence[int] | None = None,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """``samples[i]`` answers (the task's JSON objects) per prompt. With ``seeds[i]`` None the
        answer is greedy (thresholds τ), repeated; with a seed each sample draws every relation or
        tail from Bernoulli(p), p being the distilled estimate of the teacher's vote share."""
        views = [self._described(PromptView.of(p)) for p in prompts]
        self._embed([t for v in views for t in self._reads(v) if t])
        samples = samples or [1] * len(views)
        seeds = seeds or [None] * len(views)
        out = []
        for view, n, seed in zip(views, samples, seeds, strict=True):
            if seed is None or view.task == "judge_triple":
                out.append([self._one(view, None)] * n)
            else:
                out.append([self._one(view, random.Random(seed * 1009 + j)) for j in range(n)])
        return out

    def _reads(self, view: PromptView) -> tuple[str, ...]:
        """The texts whose embeddings the answer to ``view`` reads (only those are encoded: a v2
        judgement of a closed-set tail reads the (head, relation) query, already memoised by the
        expansion prompt, so it costs no encoder pass)."""
        if view.task == "judge_triple" and self._judged_by_expansion(view):
            return (_query(view),)
        return (_text(view),)

    def _judged_by_expansion(self, view: PromptView) -> bool:
        return (
            view.relation in MINED
            and f"expansion_cap:{view.relation}" in self.meta.thresholds
            and norm(view.candidate) in self._tail_index(view.tail_type)
        )

    def _described(self, view: PromptView) -> PromptView:
        """Judgement prompts carry no entity description or evidence: reuse what an earlier prompt
        about the same head gave (the pipeline asks relation filtering and expansion first)."""
        key = (norm(view.head), view.head_type)
        if view.description:
            self.about[key] = view.description
        if view.evidence:
            self.seen[key] = view.evidence
        if view.task == "judge_triple":
            return replace(
                view,
                description=view.description or self.about.get(key, ""),
                evidence=view.evidence or self.seen.get(key, ()),
            )
        return view

    def _one(self, view: PromptView, rng: random.Random | None) -> dict[str, Any]:
        if view.task == "relation_filter":
            return self._relations(view, rng)
        if view.task == "entity_expansion":
            return {"tails": self._tails(view, rng)}
        if view.task == "judge_triple":
            return self._judge(view)
        if view.task == "free_relations":
            return {"triples": []}
        from mining.llm.base import LLMError

        raise LLMError("LightPAIR answers only PAIR prompts (a facts block with a Task: line)")

    def _relations(self, view: PromptView, rng: random.Random | None) -> dict[str, Any]:
        probs = torch.sigmoid(self.model.relation_logits(self.memo[_text(view)].unsqueeze(0)))[0]
        tau = self.meta.thresholds.get("relation_filter", 0.5)
        chosen = []
        for rel in offered_relations(view.head_type):
            p = float(probs[self.model.rel_index[rel]])
            if (p >= tau) if rng is None else (rng.random() < p):
                chosen.append({"relation": rel, "reason": f"p={p:.2f}"})
        return {"relations": chosen}

    def _judge(self, view: PromptView) -> dict[str, Any]:
        """The judgement head's p(valid), or, in a v2 checkpoint (one with caps K_r) and for a tail
        of the closed set, the expansion head's p(t | h, r) against τ_r, so that LightPAIR's
        judgement agrees with its own expansion (the judgement head ranks held-out candidates worse,
        see docs/lightpair.md). The belief the pipeline reads is ≥ 0.5 exactly when valid."""
        if view.relation not in MINED:
            return {"valid": False, "confidence": 0.5}
        if self._judged_by_expansion(view):
            index = self._tail_index(view.tail_type)[norm(view.candidate)]
            logits = self._expansion_logits(self.memo[_query(view)], view)
            p, tau = float(torch.sigmoid(logits[index])), self.meta.thresholds[f"expansion:{view.relation}"]
            return {"valid": p >= tau, "confidence": round(0.5 + abs(p - tau) / 2, 4)}
        p = float(torch.sigmoid(self.model.judge_logits(self.memo[_text(view)].unsqueeze(0)))[0])
        return {"valid": p >= 0.5, "confidence": round(p if p >= 0.5 else 1.0 - p, 4)}

    def _expansion_logits(self, query: torch.Tensor, view: PromptView) -> torch.Tensor:
        """p(t | h, r) logits over the closed set of ``view``'s tail label, with the prompt's evidence."""
        keys = self._tail_keys(view.tail_type)
        slots = self.model.config.evidence_slots
        phi = evidence_matrix([view.evidence_for(view.relation)], keys, slots) if view.evidence else None
        return self.model.expansion_logits(
            query.unsqueeze(0), self.tails[view.tail_type], [view.relation], phi
        )[0]

    def _tail_keys(self, label: str) -> list[str]:
        """The normalised names of ``label``'s closed tail set, in the order of ``self.tails``."""
        if label not in self.keys:
            self.keys[label] = [norm(n) for n in self.names.get(label, [])]
        return self.keys[label]

    def _tail_index(self, label: str) -> dict[str, int]:
        if label not in self.index:
            self.index[label] = {key: i for i, key in enumerate(self._tail_keys(label))}
        return self.index[label]

    def _tails(self, view: PromptView, rng: random.Random | None) -> list[dict[str, str]]:
        if view.tail_type not in self.tails or view.relation not in MINED:
            return []
        logits = self._expansion_logits(self.memo[_text(view)], view)
        tau = self.meta.thresholds.get(f"expansion:{view.relation}", 0.5)
        skip = {norm(f) for f in view.found} | {norm(view.head)}
        cap = self.meta.thresholds.get(f"expansion_cap:{view.relation}")
        k = view.k if cap is None else min(view.k, max(0, int(cap) - len(view.found)))
        out: list[dict[str, str]] = []
        probs = torch.sigmoid(logits)
        for index in torch.argsort(logits, descending=True).tolist()[: 5 * view.k]:
            name, p = self.names[view.tail_type][index], float(probs[index])
            if len(out) >= k or (rng is None and p < tau):
                break
            if norm(name) not in skip and (rng is None or rng.random() < p):
                out.append({"name": name, "type": view.tail_type})
        return out


def _query(view: PromptView) -> str:
    """The bi-encoder's query for an expansion or judgement prompt's (head, relation)."""
    if view.task not in ("entity_expansion", "judge_triple") or view.relation not in MINED:
        return ""
    return query_text(view.head, view.head_type, view.description, view.relation)


def _text(view: PromptView) -> str:
    if view.task == "relation_filter":
        return head_text(view.head, view.head_type, view.description)
    if view.relation not in MINED:
        return ""
    if view.task == "entity_expansion":
        return query_text(view.head, view.head_type, view.description, view.relation)
    if view.task == "judge_triple":
        return judge_text(view.head, view.head_type, view.relation, view.candidate)
    return ""
