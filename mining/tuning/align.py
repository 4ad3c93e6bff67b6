"""Aligning LightPAIR's expansion policy on point-wise feedback: SFT-only vs pair-wise DPO vs ULMA.

The policy is π(t | h, r) = softmax over the candidate tails of the asked label of LightPAIR's
bi-encoder logits (``LightPAIR.expansion_logits``). The encoder is frozen (query and tail
embeddings are computed once); the expansion head (query projection, per-relation projections,
scale, biases and, for a checkpoint trained with behavioural evidence, the evidence weights v_r)
trains, from a distilled checkpoint, against a frozen copy of itself as π_ref. With evidence, φ for
a head comes from the build's own evidence (its ``checkpoint.json``, computed from the store's
visible data), rounded as the prompts show it. Feedback rows are
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
from mining.lightpair.corpus import norm, query_text, relation_evidence
from mining.lightpair.model import LightPAIR, bi_encoder_logits, evidence_matrix
from mining.pipeline.builddir import BuildDir
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
    continuous labels, and what trains: ``head`` (projections, scale, biases, evidence weights) or
    ``calibration`` (scale, biases and evidence weights only: the few parameters shared by all
    heads, so feedback on some heads moves the others the same way)."""

    method: Method = "ulma"
    beta: float = 0.1
    c: float = 0.0
    steps: int = 200
    lr: float = 1e-3
    batch: int = 64
    seed: int = 0
    continuous: bool = False
    trainable: Literal["head", "calibration"] = "head"


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


def feedback_from_truth(build: BuildDir, truth_triples: set[tuple[str, str, str]]) -> list[Feedback]:
    """Every candidate of a build (accepted or not), labelled by the world's truth."""
    names, out = _names(), []
    for row in build.candidate_rows():
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


EvidenceItems = dict[str, list[tuple[str, str, float, int, float]]]  # normalised head name → items


def evidence_of_build(build: BuildDir) -> EvidenceItems:
    """The behavioural evidence a build prompted with (its checkpoint), by normalised head name,
    rounded as the prompts show it (share 2 decimals, lift 1); empty without evidence."""
    from mining.pipeline.evidence import BehaviourEvidence

    if not build.has_state():
        return {}
    evidence = BehaviourEvidence.from_json(build.load_state().evidence)
    names = _names()
    return {
        norm(names[node][0]): [(k, n, round(s, 2), c, round(x, 1)) for k, n, s, c, x in items]
        for (_, node), items in evidence.items.items()
        if node in names
    }


class ExpansionPolicy:
    """log π(t | h, r) over precomputed, frozen embeddings (only the expansion head is used), with
    φ from ``evidence`` when the model reads behavioural evidence."""

    def __init__(
        self,
        model: LightPAIR,
        tails: dict[str, torch.Tensor],
        names: dict[str, list[str]],
        evidence: EvidenceItems | None = None,
    ) -> None:
        self.model, self.tails, self.names = model, tails, names
        self.index = {label: {n: i for i, n in enumerate(ns)} for label, ns in names.items()}
        self.keys = {label: [norm(n) for n in ns] for label, ns in names.items()}
        self.queries: dict[str, torch.Tensor] = {}
        self.evidence = evidence if model.config.evidence else None
        self._phi: dict[tuple[str, str, str], torch.Tensor] = {}

    def phi(self, head: str, relation: str, tail_type: str) -> torch.Tensor | None:
        """(1, T, 4 · slots) evidence features of ``head``'s prompt for ``relation`` (None: off)."""
        if self.evidence is None:
            return None
        key = (norm(head), relation, tail_type)
        if key not in self._phi:
            items = relation_evidence(self.evidence.get(key[0], []), relation)
            self._phi[key] = evidence_matrix([items], self.keys[tail_type], self.model.config.evidence_slots)
        return self._phi[key]

    def embed_queries(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.queries})
        with torch.no_grad():
            for i in range(0, len(todo), 128):
                self.queries.update(zip(todo[i : i + 128], self.model.embed(todo[i : i + 128]), strict=True))

    def logits(
        self, head: nn.Module, query: str, relation: str, tail_type: str, head_name: str = ""
    ) -> torch.Tensor:
        q = self.queries[query].unsqueeze(0)
        phi = self.phi(head_name, relation, tail_type)
        out: torch.Tensor = head(q, self.tails[tail_type], [relation], phi)[0]
        return out

    def logp(self, head: nn.Module, rows: Sequence[Feedback], queries: Sequence[str]) -> torch.Tensor:
        values = []
        for row, query in zip(rows, queries, strict=True):
            logits = self.logits(head, query, row.relation, row.tail_type, row.head)
            values.append(torch.log_softmax(logits, -1)[self.index[row.tail_type][row.tail]])
        return torch.stack(values)


class ExpansionHead(nn.Module):
    """The trainable part of the policy: a copy of LightPAIR's query projection(s), scale, biases
    and evidence weights (whichever the checkpoint has)."""

    def __init__(self, model: LightPAIR) -> None:
        super().__init__()
        self.query_proj = copy.deepcopy(model.query_proj)
        self.log_scale = nn.Parameter(model.log_scale.detach().clone())
        self.expansion_bias = nn.Parameter(model.expansion_bias.detach().clone())
        self.relation_proj = _copy(model.relation_proj)
        self.evidence_weight = _copy(model.evidence_weight)
        self.rel_index = dict(model.rel_index)

    def forward(
        self,
        queries: torch.Tensor,
        tails: torch.Tensor,
        relations: Sequence[str],
        evidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return bi_encoder_logits(self, queries, tails, relations, evidence)

    def install(self, model: LightPAIR) -> None:
        """Write the aligned head into ``model`` (to save a servable checkpoint)."""
        with torch.no_grad():
            model.query_proj.load_state_dict(self.query_proj.state_dict())
            model.log_scale.copy_(self.log_scale)
            model.expansion_bias.copy_(self.expansion_bias)
            for mine, theirs in (
                (self.relation_proj, model.relation_proj),
                (self.evidence_weight, model.evidence_weight),
            ):
                if mine is not None and theirs is not None:
                    theirs.copy_(mine)


def _copy(param: nn.Parameter | None) -> nn.Parameter | None:
    return None if param is None else nn.Parameter(param.detach().clone())


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
    if config.trainable == "calibration":
        for p in [
            *head.query_proj.parameters(),
            *([head.relation_proj] if head.relation_proj is not None else []),
        ]:
            p.requires_grad = False
    prompts = sorted({(f.head, f.relation) for f in rows})
    prompt_id = {p: i for i, p in enumerate(prompts)}
    opt = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=config.lr)
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


def split_heads(
    feedback: Sequence[Feedback], share: float, seed: int
) -> tuple[list[Feedback], list[Feedback]]:
    """(alignment rows, calibration rows): a seeded ``share`` of the feedback's heads is kept
    aside, every row of a head on one side."""
    heads = sorted({f.head for f in feedback})
    aside = set(random.Random(seed).sample(heads, round(len(heads) * share)))
    return [f for f in feedback if f.head not in aside], [f for f in feedback if f.head in aside]


@torch.no_grad()
def calibrate_on_feedback(
    policy: ExpansionPolicy, head: nn.Module, feedback: Sequence[Feedback]
) -> dict[str, float]:
    """τ_r and K_r of the ``EVAL_RELATIONS`` re-chosen (as
    :func:`mining.lightpair.calibration.caps_from` does against the teacher) against the accepted
    tails of ``feedback``'s (head, relation) pairs: annotators' labels instead of the teacher's
    answers. Use heads the policy was not aligned on."""
    from mining.lightpair.calibration import caps_from
    from mining.lightpair.corpus import ExpansionExample

    descriptions = {n: d for n, _, d in _names().values()}
    wanted = {r for r, _ in EVAL_RELATIONS}
    groups: dict[tuple[str, str, str, str], set[str]] = {}
    for f in feedback:
        if f.relation in wanted and f.head_type == "Intent" and f.tail in policy.index.get(f.tail_type, {}):
            gold = groups.setdefault((f.head, f.head_type, f.relation, f.tail_type), set())
            if f.z >= 1.0:
                gold.add(f.tail)
    queries = {key: query_text(key[0], key[1], descriptions.get(key[0], ""), key[2]) for key in groups}
    policy.embed_queries(list(queries.values()))  # one batched pass
    rows, ranked = [], []
    for (name, label, relation, tail_type), gold in sorted(groups.items()):
        query = queries[name, label, relation, tail_type]
        probs = torch.sigmoid(policy.logits(head, query, relation, tail_type, name)).tolist()
        order = sorted(zip(policy.names[tail_type], probs, strict=True), key=lambda x: -x[1])
        ranked.append([(t, p) for t, p in order if t != name])
        rows.append(ExpansionExample(name, label, relation, tail_type, query, (), dict.fromkeys(gold, 1.0)))
    out = caps_from(rows, ranked)
    out.pop("f1", None)
    return out


@torch.no_grad()
def evaluate_heads(
    policy: ExpansionPolicy,
    head: nn.Module,
    seeds: Sequence[tuple[str, str, str]],
    truth: set[tuple[str, str, str]],
    thresholds: dict[str, float],
    k: int = 10,
) -> dict[str, float]:
    """Greedy answers (top-k with p ≥ τ_r, at most K_r where the checkpoint has caps) for every
    held-out seed (id, name, description) and relation of ``EVAL_RELATIONS``: hallucinated-tail
    rate, precision, recall, F1, precision@5."""
    ids = {(label, name): i for i, (name, label, _) in _names().items()}
    queries = {(s, r): query_text(s[1], "Intent", s[2], r) for s in seeds for r, _ in EVAL_RELATIONS}
    policy.embed_queries(list(queries.values()))
    answered = false = gold_total = hit = top5_true = top5 = 0
    for seed in seeds:
        for relation, label in EVAL_RELATIONS:
            logits = policy.logits(head, queries[seed, relation], relation, label, seed[1])
            order = torch.argsort(logits, descending=True).tolist()
            probs = torch.sigmoid(logits).tolist()
            ranked = [
                (ids[label, policy.names[label][i]], probs[i])
                for i in order
                if policy.names[label][i] != seed[1]
            ]
            tail_ids = [t for t, _ in ranked]
            tau = thresholds.get(f"expansion:{relation}", 0.5)
            cap = int(thresholds.get(f"expansion_cap:{relation}", k))  # v2 checkpoints: K_r, as served
            answer = [t for t, p in ranked if p >= tau][: min(k, cap)]
            gold = {t for r, h, t in truth if r == relation and h == seed[0]}
            answered, false = answered + len(answer), false + sum(t not in gold for t in answer)
            gold_total, hit = gold_total + len(gold), hit + sum(t in gold for t in answer)
            top5, top5_true = top5 + 5, top5_true + sum(t in gold for t in tail_ids[:5])
    return {
        "answered_tails": answered,
        "hallucinated_tail_rate": round(false / answered, 3) if answered else 0.0,
        "precision": round(1 - false / answered, 3) if answered else 0.0,
        "recall": round(hit / gold_total, 3) if gold_total else 0.0,
        "f1": round(2 * (answered - false) / (answered + gold_total), 3) if answered + gold_total else 0.0,
        "precision_at_5": round(top5_true / top5, 3) if top5 else 0.0,
    }
