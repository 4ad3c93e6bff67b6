"""Aligning LightPAIR's expansion policy on point-wise feedback: SFT-only vs pair-wise DPO vs ULMA.

The policy is π(t | h, r) = softmax over the candidate tails of the asked label of LightPAIR's
bi-encoder logits (``LightPAIR.expansion_logits``). The encoder is frozen (query and tail
embeddings are computed once); the expansion head (query projection, scale) trains, from a
distilled checkpoint, against a frozen copy of itself as π_ref. Feedback rows are
(head, relation, tail, z): z = 1 accepted, 0 rejected (or a score in [0, 1]) — from the world's
truth (a build's ``candidates.jsonl`` checked against ``TruthKG``) and from users
(``mokg feedback import FILE``). The losses are in ``ulma.py``.

Shown by, on held-out seed intents (never heads in the feedback or the corpus): the
hallucinated-tail rate (share of answered tails that are false) of the greedy answer, its
precision and recall, and precision@5 of the ranking.
"""

from __future__ import annotations

import copy
import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from graph.errors import InputError
from mining.lightpair.corpus import norm, query_text
from mining.lightpair.model import LightPAIR
from mining.tuning import ulma as losses

Method = Literal["sft", "dpo", "ulma"]
EVAL_RELATIONS = (("NEEDS", "Category"), ("CO_OCCURS_WITH", "Intent"), ("PRECEDES", "Intent"))


@dataclass(frozen=True)
class Feedback:
    head: str
    head_type: str
    relation: str
    tail_type: str
    tail: str
    z: float


@dataclass(frozen=True)
class AlignConfig:
    """Args: method (sft, dpo, ulma), β, c, optimiser steps, learning rate, batch of prompts, seed,
    continuous labels."""

    method: Method = "ulma"
    beta: float = 0.1
    c: float = 0.0
    steps: int = 200
    lr: float = 1e-3
    batch: int = 64
    seed: int = 0
    continuous: bool = False


def frozen_copy(module: nn.Module) -> nn.Module:
    """The reference model: a deep copy in eval mode (dropout off) with no trainable parameter."""
    ref = copy.deepcopy(module)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad = False
    return ref


def _names() -> dict[str, tuple[str, str, str]]:
    """id → (name, label, description) for every ontology intent and category."""
    from loaders.world.ontology import load_ontology

    onto = load_ontology()
    out = {i.id: (i.name, "Intent", i.description) for i in onto.intents.values()}
    out.update({c.id: (c.name, "Category", "") for c in onto.categories.values()})
    return out


def feedback_from_truth(workdir: Path, truth_triples: set[tuple[str, str, str]]) -> list[Feedback]:
    """Every candidate of a build (accepted or not), labelled by the world's truth."""
    names, out = _names(), []
    for line in (workdir / "candidates.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["head"] not in names or row["tail"] not in names:
            continue
        z = float((row["relation"], row["head"], row["tail"]) in truth_triples)
        out.append(
            Feedback(
                names[row["head"]][0],
                row["head_type"],
                row["relation"],
                row["tail_type"],
                names[row["tail"]][0],
                z,
            )
        )
    return sorted(set(out), key=lambda f: (f.head, f.relation, f.tail))


def feedback_from_file(path: Path) -> list[Feedback]:
    """User feedback: CSV or JSON lines with head, relation, tail, label (1/0, true/false or a score)."""
    if not path.exists():
        raise InputError(f"feedback file {path} does not exist")
    if path.suffix == ".csv":
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_name = {norm(n): (n, label) for n, label, _ in _names().values()}
    out = []
    for number, row in enumerate(rows, start=1):
        head, tail = by_name.get(norm(str(row.get("head", "")))), by_name.get(norm(str(row.get("tail", ""))))
        relation = str(row.get("relation", "")).strip().upper()
        if head is None or tail is None or not relation:
            raise InputError(f"{path} row {number}: needs a known head, a relation and a known tail")
        raw = str(row.get("label", "")).strip().lower()
        z = {"true": 1.0, "false": 0.0, "accepted": 1.0, "rejected": 0.0}.get(raw)
        out.append(Feedback(head[0], head[1], relation, tail[1], tail[0], z if z is not None else float(raw)))
    return out


class ExpansionPolicy:
    """log π(t | h, r) over precomputed, frozen embeddings (only the expansion head is used)."""

    def __init__(self, model: LightPAIR, tails: dict[str, torch.Tensor], names: dict[str, list[str]]) -> None:
        self.model, self.tails, self.names = model, tails, names
        self.index = {label: {n: i for i, n in enumerate(ns)} for label, ns in names.items()}
        self.queries: dict[str, torch.Tensor] = {}

    def embed_queries(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.queries})
        with torch.no_grad():
            for i in range(0, len(todo), 128):
                self.queries.update(zip(todo[i : i + 128], self.model.embed(todo[i : i + 128]), strict=True))

    def logits(self, head: nn.Module, query: str, relation: str, tail_type: str) -> torch.Tensor:
        q = self.queries[query].unsqueeze(0)
        out: torch.Tensor = head(q, self.tails[tail_type], [relation])[0]
        return out

    def logp(self, head: nn.Module, rows: Sequence[Feedback], queries: Sequence[str]) -> torch.Tensor:
        values = []
        for row, query in zip(rows, queries, strict=True):
            logits = self.logits(head, query, row.relation, row.tail_type)
            values.append(torch.log_softmax(logits, -1)[self.index[row.tail_type][row.tail]])
        return torch.stack(values)


class ExpansionHead(nn.Module):
    """The trainable part of the policy: LightPAIR's query projection, scale and biases."""

    def __init__(self, model: LightPAIR) -> None:
        super().__init__()
        self.query_proj = copy.deepcopy(model.query_proj)
        self.log_scale = nn.Parameter(model.log_scale.detach().clone())
        self.expansion_bias = nn.Parameter(model.expansion_bias.detach().clone())
        self.rel_index = dict(model.rel_index)

    def forward(self, queries: torch.Tensor, tails: torch.Tensor, relations: Sequence[str]) -> torch.Tensor:
        q = nn.functional.normalize(self.query_proj(queries), dim=-1)
        bias = self.expansion_bias[[self.rel_index[r] for r in relations]].unsqueeze(1)
        out: torch.Tensor = self.log_scale.exp() * q @ tails.T + bias
        return out


def _query(f: Feedback, descriptions: dict[str, str]) -> str:
    return query_text(f.head, f.head_type, descriptions.get(f.head, ""), f.relation)


def align(policy: ExpansionPolicy, feedback: Sequence[Feedback], config: AlignConfig) -> ExpansionHead:
    """Train a copy of the expansion head with ``config.method`` against a frozen reference."""
    torch.manual_seed(config.seed)
    gen = random.Random(config.seed)
    descriptions = {n: d for n, _, d in _names().values()}
    rows = [f for f in feedback if f.tail in policy.index.get(f.tail_type, {})]
    queries = [_query(f, descriptions) for f in rows]
    policy.embed_queries(queries)
    head = ExpansionHead(policy.model)
    reference = frozen_copy(head)
    prompts = sorted({(f.head, f.relation) for f in rows})
    prompt_id = {p: i for i, p in enumerate(prompts)}
    opt = torch.optim.Adam(head.parameters(), lr=config.lr)
    for _ in range(config.steps):
        chosen = set(gen.sample(prompts, min(config.batch, len(prompts))))
        idx = [i for i, f in enumerate(rows) if (f.head, f.relation) in chosen]
        batch, qs = [rows[i] for i in idx], [queries[i] for i in idx]
        z = torch.tensor([f.z for f in batch])
        logp = policy.logp(head, batch, qs)
        with torch.no_grad():
            ref_logp = policy.logp(reference, batch, qs)
        if config.method == "sft":
            loss = losses.sft(logp, z)
        elif config.method == "dpo":
            pid = torch.tensor([prompt_id[f.head, f.relation] for f in batch])
            loss = losses.pairwise_dpo(logp, ref_logp, z, pid, config.beta)
        else:
            loss = losses.ulma(logp, ref_logp, z, config.beta, config.c, config.continuous)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    head.eval()
    return head


@torch.no_grad()
def evaluate_heads(
    policy: ExpansionPolicy,
    head: nn.Module,
    seeds: Sequence[tuple[str, str, str]],
    truth: set[tuple[str, str, str]],
    thresholds: dict[str, float],
    k: int = 10,
) -> dict[str, float]:
    """Greedy answers (top-k with p ≥ τ_r) for every held-out seed (id, name, description) and
    relation of ``EVAL_RELATIONS``: hallucinated-tail rate, precision, recall, precision@5."""
    ids = {(label, name): i for i, (name, label, _) in _names().items()}
    queries = {(s, r): query_text(s[1], "Intent", s[2], r) for s in seeds for r, _ in EVAL_RELATIONS}
    policy.embed_queries(list(queries.values()))
    answered = false = gold_total = hit = top5_true = top5 = 0
    for seed in seeds:
        for relation, label in EVAL_RELATIONS:
            logits = policy.logits(head, queries[seed, relation], relation, label)
            order = torch.argsort(logits, descending=True).tolist()
            probs = torch.sigmoid(logits).tolist()
            ranked = [
                (ids[label, policy.names[label][i]], probs[i])
                for i in order
                if policy.names[label][i] != seed[1]
            ]
            tail_ids = [t for t, _ in ranked]
            tau = thresholds.get(f"expansion:{relation}", 0.5)
            answer = [t for t, p in ranked if p >= tau][:k]
            gold = {t for r, h, t in truth if r == relation and h == seed[0]}
            answered, false = answered + len(answer), false + sum(t not in gold for t in answer)
            gold_total, hit = gold_total + len(gold), hit + sum(t in gold for t in answer)
            top5, top5_true = top5 + 5, top5_true + sum(t in gold for t in tail_ids[:5])
    return {
        "answered_tails": answered,
        "hallucinated_tail_rate": round(false / answered, 3) if answered else 0.0,
        "precision": round(1 - false / answered, 3) if answered else 0.0,
        "recall": round(hit / gold_total, 3) if gold_total else 0.0,
        "precision_at_5": round(top5_true / top5, 3) if top5 else 0.0,
    }
