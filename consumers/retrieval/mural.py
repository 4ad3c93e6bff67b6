"""MURAL: multi-granularity-aware aspect learning for multi-aspect dense retrieval.

After "A Multi-Granularity-Aware Aspect Learning Model for Multi-Aspect Dense Retrieval" (Xiaojie
Sun, Keping Bi, Jiafeng Guo et al., WSDM 2024, arXiv:2312.02538). The equation tags below (V, A, M,
F, C) are this module's, not the paper's numbering.

Input. ``A`` learned placeholder tokens follow ``[CLS]``, one per aspect; the aspect values are
never written into the text::

    [CLS] [ASP_1] … [ASP_A] t_1 … t_n [SEP]          h = BERT(·) ∈ R^{L×H}

``h_cls = h[0]``, ``h_a = h[a]`` (a = 1..A) is aspect ``a``'s output.

(V) Unit embeddings. A unit ``u`` of aspect ``a`` at granularity ``g`` (a value, a word or a
word-piece, :mod:`.aspects`) is embedded as the mean of the encoder's *input* token embeddings
``W_tok`` of its tokens, through one linear layer per granularity (shared by the aspects)::

    e_u^g = W_g · mean_{t ∈ tok(u)} W_tok[t] + b_g                       [U_ag, H]

With ``value_embedding="ids"`` a unit is a class id instead: ``e_u^g = E_ag[u]``, a free table per
(aspect, granularity), initialised N(0, 0.02²), that knows nothing of the value's words. This is how
the baselines MURAL compares against treat aspect values:

* **MTBERT** (multi-task BERT): no placeholders, ``[CLS]`` predicts every aspect's value id, and the
  representation is ``h_cls`` (``placement="cls"``, ``granularities=("value",)``, ids);
* **MADRAL** (Kong et al., "Multi-Aspect Dense Retrieval", KDD 2022): learned aspect tokens after
  [CLS] attend over the text tokens in every layer (our placeholders) and predict value ids, fused
  from [CLS] (``placement="placeholders"``, ``granularities=("value",)``, ids).

(A) Aspect loss. ``h_a`` is scored against every unit of its aspect, softmax over the units; the
loss is minus the mean log-probability of the item's positive units (its value, the value's words,
its pieces), averaged over the items that have a value and then over the (aspect, granularity)
pairs present in the batch::

    p(u | i, a, g) = softmax_u(h_a · e_u^g)
    L_asp = mean_{a,g} mean_{i: P ≠ ∅} −(1/|P_iag|) Σ_{u ∈ P_iag} log p(u | i, a, g)

(M) Masked LM on 15 % of the *content* tokens (placeholders, [CLS], [SEP] and padding never masked;
a chosen token becomes [MASK] 80 %, a random vocabulary token 10 %, stays 10 %, as in BERT), with a
head tied to ``W_tok``. Pre-training loss: ``L = L_mlm + λ L_asp`` (λ = ``aspect_weight``, 0.1).

(F) Fusion, our reading of the paper's CLS gating: weights from [CLS] over the aspect outputs,
added to [CLS]::

    w = softmax(W_f h_cls + b_f) ∈ R^A,     z = h_cls + Σ_a w_a h_a        [B, H]

(with ``placement="cls"`` there are no placeholders, every aspect is predicted from ``h_cls`` and
``z = h_cls``; with ``fusion="cls"`` the placeholders stay in the input and carry the aspect loss,
but the representation is ``z = h_cls``: a diagnostic switch, not in the paper; with
``fusion="scaled"``, ours too, ``z = h_cls + γ Σ_a w_a h_a`` with a learned scalar γ that starts at 0,
so fine-tuning starts from the [CLS] vector and adds as much aspect evidence as helps). Relevance is the
dot product ``s(q, d) = z_q · z_d``; queries go through the same encoder with the same placeholders.

(C) Fine-tuning: in-batch softmax with one hard negative per query, temperature τ::

    L_rel = −log exp(s(q, d+)/τ) / Σ_{d ∈ {d+_1..d+_B, d-_1..d-_B}} exp(s(q, d)/τ)

Serving precision: :meth:`Mural.serve_in` puts the BERT encoder in bfloat16 for embedding
(:mod:`loaders.precision`); its token outputs ``h`` are cast to float32 before the gate and Eq. F.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from consumers.retrieval.aspects import GRANULARITIES, AspectVocab

PLACEMENTS = ("placeholders", "cls")
VALUE_EMBEDDINGS = ("tokens", "ids")
FUSIONS = ("gate", "cls", "scaled")


@dataclass(frozen=True)
class MuralConfig:
    """MURAL's switches. The number of placeholders is the vocabulary's number of aspects.

    granularities: which of ``value``/``word``/``piece`` the aspect loss uses.
    placement: ``placeholders`` (MURAL) or ``cls`` (ablation: no placeholders, aspects from [CLS]).
    mlm: masked-LM loss on (ablation: off, pre-training is then the aspect loss alone).
    mlm_prob: share of content tokens chosen for the MLM.
    aspect_weight: λ of ``L_mlm + λ L_asp``.
    max_len: tokens per input, [CLS], placeholders and [SEP] included.
    temperature: τ of the contrastive loss (1: plain dot products, as DPR; a small τ on unnormalised
        BERT vectors blows the logits up).
    value_embedding: ``tokens`` (MURAL, Eq. V from the value's input-token embeddings) or ``ids``
        (a free embedding per unit: MTBERT and MADRAL).
    fusion: ``gate`` (Eq. F), ``cls`` (``z = h_cls`` even with placeholders; diagnostic) or ``scaled``
        (Eq. F's aspect sum times a learned γ initialised at 0; ours).
    """

    granularities: tuple[str, ...] = GRANULARITIES
    placement: str = "placeholders"
    mlm: bool = True
    mlm_prob: float = 0.15
    aspect_weight: float = 0.1
    max_len: int = 64
    temperature: float = 1.0
    value_embedding: str = "tokens"
    fusion: str = "gate"

    def __post_init__(self) -> None:
        if not self.granularities or any(g not in GRANULARITIES for g in self.granularities):
            raise ValueError(f"granularities must be a non-empty subset of {GRANULARITIES}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion is one of {FUSIONS}, not {self.fusion!r}")
        if self.value_embedding not in VALUE_EMBEDDINGS:
            raise ValueError(f"value_embedding is one of {VALUE_EMBEDDINGS}, not {self.value_embedding!r}")
        if not 0.0 < self.mlm_prob < 1.0 or self.temperature <= 0 or self.max_len < 8:
            raise ValueError("need 0 < mlm_prob < 1, temperature > 0 and max_len ≥ 8")


class Batch(NamedTuple):
    """Model input. ids, mask: [B, L] int64; content: [B, L] bool (tokens of the text proper)."""

    ids: torch.Tensor
    mask: torch.Tensor
    content: torch.Tensor


class Output(NamedTuple):
    """cls: [B, H]; aspects: [B, A, H] (each aspect's output); fused: [B, H] (Eq. F); hidden: [B, L, H]."""

    cls: torch.Tensor
    aspects: torch.Tensor
    fused: torch.Tensor
    hidden: torch.Tensor


class Mural(nn.Module):
    """MURAL over a HF ``BertModel`` ``encoder`` and its ``tokenizer`` (module doc).

    Adds the placeholder tokens ``[ASP_1]…[ASP_A]`` to ``tokenizer`` and resizes the encoder's
    embeddings (both are changed in place).
    """

    def __init__(self, encoder: Any, tokenizer: Any, vocab: AspectVocab, config: MuralConfig) -> None:
        super().__init__()
        self.encoder, self.tokenizer, self.vocab, self.config = encoder, tokenizer, vocab, config
        self.precision = "fp32"  # the encoder's serving precision (:meth:`serve_in`)
        hidden = int(encoder.config.hidden_size)
        self.n_aspects = len(vocab.names)
        self.n_placeholders = self.n_aspects if config.placement == "placeholders" else 0
        self.base_vocab = int(tokenizer.vocab_size)
        self.placeholder_ids: list[int] = []
        if self.n_placeholders:
            names = [f"[ASP_{a + 1}]" for a in range(self.n_placeholders)]
            tokenizer.add_tokens(names, special_tokens=True)
            self.placeholder_ids = [int(i) for i in tokenizer.convert_tokens_to_ids(names)]
            if encoder.get_input_embeddings().num_embeddings < len(tokenizer):
                encoder.resize_token_embeddings(len(tokenizer))
        ids_only = config.value_embedding == "ids"
        self.value_proj = nn.ModuleDict(
            {} if ids_only else {g: nn.Linear(hidden, hidden) for g in config.granularities}
        )
        self.value_table = nn.ParameterDict()
        fuse = self.n_placeholders and config.fusion != "cls"
        self.gate = nn.Linear(hidden, self.n_placeholders) if fuse else None
        self.fusion_scale = nn.Parameter(torch.zeros(())) if fuse and config.fusion == "scaled" else None
        eps = float(getattr(encoder.config, "layer_norm_eps", 1e-12))
        self.mlm_transform = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps)
        )
        self.mlm_bias = nn.Parameter(torch.zeros(encoder.get_input_embeddings().num_embeddings))
        self._units: dict[tuple[str, str], tuple[str, str, str]] = {}
        for a, name in enumerate(vocab.names):
            for g in config.granularities:
                grain = vocab.grains[name][g]
                width = max((len(t) for t in grain.tokens), default=1) or 1
                ids = torch.zeros(len(grain.tokens), width, dtype=torch.long)
                tmask = torch.zeros(len(grain.tokens), width)
                for u, toks in enumerate(grain.tokens):
                    ids[u, : len(toks)] = torch.tensor(toks, dtype=torch.long)
                    tmask[u, : len(toks)] = 1.0
                keys = (f"unit_ids_{a}_{g}", f"unit_mask_{a}_{g}", f"members_{a}_{g}")
                self.register_buffer(keys[0], ids, persistent=False)
                self.register_buffer(keys[1], tmask, persistent=False)
                self.register_buffer(keys[2], torch.from_numpy(grain.membership()), persistent=False)
                self._units[(name, g)] = keys
                if ids_only:
                    self.value_table[f"{a}_{g}"] = nn.Parameter(torch.randn(len(grain.tokens), hidden) * 0.02)

    # -- inputs ------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> Batch:
        """``[CLS] [ASP_1] … [ASP_A] text [SEP]``, right-padded; the text truncated to fit ``max_len``."""
        tok = self.tokenizer
        room = self.config.max_len - 2 - self.n_placeholders
        body = tok([str(t) for t in texts], add_special_tokens=False, truncation=True, max_length=room)
        rows = [[tok.cls_token_id, *self.placeholder_ids, *b, tok.sep_token_id] for b in body["input_ids"]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), int(tok.pad_token_id), dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        content = torch.zeros(len(rows), width, dtype=torch.bool)
        start = 1 + self.n_placeholders
        for n, r in enumerate(rows):
            ids[n, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[n, : len(r)] = 1
            content[n, start : len(r) - 1] = True
        device = self.mlm_bias.device
        return Batch(ids.to(device), mask.to(device), content.to(device))

    def mask_tokens(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[Batch, torch.Tensor]:
        """(Eq. M) The masked batch and the labels [B, L] (-100 where not chosen); only content tokens
        are ever chosen. ``generator`` is a CPU generator."""
        shape = batch.ids.shape
        draw = torch.rand(shape, generator=generator).to(batch.ids.device)
        how = torch.rand(shape, generator=generator).to(batch.ids.device)
        rand_tok = torch.randint(0, self.base_vocab, shape, generator=generator).to(batch.ids.device)
        chosen = (draw < self.config.mlm_prob) & batch.content
        labels = torch.where(chosen, batch.ids, torch.full_like(batch.ids, -100))
        ids = torch.where(
            chosen & (how < 0.8), torch.full_like(batch.ids, self.tokenizer.mask_token_id), batch.ids
        )
        ids = torch.where(chosen & (how >= 0.8) & (how < 0.9), rand_tok, ids)
        return Batch(ids, batch.mask, batch.content), labels

    # -- the model --------------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> Output:
        """Encode ``batch``: [CLS], per-aspect outputs and the fused representation (Eq. F)."""
        hidden = self.encoder(input_ids=batch.ids, attention_mask=batch.mask).last_hidden_state.float()
        # [B, L, H]; float32 even from a bf16 encoder (:meth:`serve_in`): gate and fusion in fp32
        cls = hidden[:, 0]
        if not self.n_placeholders:
            aspects = cls[:, None, :].expand(-1, self.n_aspects, -1)
            return Output(cls, aspects, cls, hidden)
        aspects = hidden[:, 1 : 1 + self.n_placeholders]  # [B, A, H]
        if self.gate is None:  # fusion="cls"
            return Output(cls, aspects, cls, hidden)
        weights = torch.softmax(self.gate(cls), dim=-1)  # [B, A]
        mixed = torch.einsum("ba,bah->bh", weights, aspects)
        fused = cls + (mixed if self.fusion_scale is None else self.fusion_scale * mixed)
        return Output(cls, aspects, fused, hidden)

    def serve_in(self, precision: str) -> Mural:
        """Run the BERT encoder in ``precision`` for embedding: ``fp32`` (as trained), ``bf16`` or
        ``auto`` (:mod:`loaders.precision`); the gate and the fusion (Eq. F) stay in float32. For
        serving only: a bf16 model is not trained further. Returns the model."""
        from loaders.precision import dtype_of, resolve

        self.precision = resolve(precision)
        self.encoder.to(dtype_of(self.precision))
        return self

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """[B, H] fused representations (Eq. F), with gradients."""
        out: torch.Tensor = self(self.tokenize(texts)).fused
        return out

    @torch.no_grad()
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """[N, H] float32 fused representations, eval mode, no gradients (for the faiss index)."""
        was = self.training
        self.eval()
        parts = [
            self.encode(texts[i : i + batch_size]).float().cpu().numpy()
            for i in range(0, len(texts), batch_size)
        ]
        self.train(was)
        hidden = int(self.encoder.config.hidden_size)
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, hidden), np.float32)

    def unit_embeddings(self, aspect: str, granularity: str) -> torch.Tensor:
        """(Eq. V) [U, H]: every unit of ``aspect`` at ``granularity``."""
        if self.config.value_embedding == "ids":
            table: torch.Tensor = self.value_table[f"{self.vocab.names.index(aspect)}_{granularity}"]
            return table
        ids_key, mask_key, _ = self._units[(aspect, granularity)]
        ids, tmask = getattr(self, ids_key), getattr(self, mask_key)
        tokens = self.encoder.get_input_embeddings()(ids) * tmask[..., None]  # [U, T, H]
        mean = tokens.sum(1) / tmask.sum(1, keepdim=True).clamp(min=1.0)
        out: torch.Tensor = self.value_proj[granularity](mean)
        return out

    def aspect_logits(self, aspects: torch.Tensor, aspect: str, granularity: str) -> torch.Tensor:
        """[B, U]: ``h_a · e_u^g`` for the aspect's outputs ``aspects`` [B, H]."""
        return aspects @ self.unit_embeddings(aspect, granularity).T

    def aspect_loss(self, aspects: torch.Tensor, value_ids: torch.Tensor) -> torch.Tensor:
        """(Eq. A) ``aspects`` [B, A, H], ``value_ids`` [B, A] (-1: no value) → scalar."""
        losses = []
        for a, name in enumerate(self.vocab.names):
            has = value_ids[:, a] >= 0
            if not bool(has.any()):
                continue
            for g in self.config.granularities:
                target = getattr(self, self._units[(name, g)][2])[value_ids[has, a]]  # [b, U]
                n_pos = target.sum(1)
                keep = n_pos > 0
                if not bool(keep.any()):
                    continue
                logp = torch.log_softmax(self.aspect_logits(aspects[has, a][keep], name, g), dim=-1)
                losses.append((-(logp * target[keep]).sum(1) / n_pos[keep]).mean())
        return torch.stack(losses).mean() if losses else aspects.sum() * 0.0

    def mlm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(Eq. M) cross-entropy at the chosen positions; head tied to the input embeddings."""
        chosen = labels != -100
        if not bool(chosen.any()):
            return hidden.sum() * 0.0
        logits = (
            self.mlm_transform(hidden[chosen]) @ self.encoder.get_input_embeddings().weight.T + self.mlm_bias
        )
        return F.cross_entropy(logits, labels[chosen])

    def pretrain_loss(
        self, texts: Sequence[str], value_ids: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, mlm, aspect): ``L_mlm + λ L_asp`` on one batch (``value_ids`` [B, A], -1: none)."""
        batch = self.tokenize(texts)
        labels = None
        if self.config.mlm:
            batch, labels = self.mask_tokens(batch, generator)
        out = self(batch)
        asp = self.aspect_loss(out.aspects, value_ids.to(batch.ids.device))
        mlm = self.mlm_loss(out.hidden, labels) if labels is not None else asp.new_zeros(())
        return mlm + self.config.aspect_weight * asp, mlm, asp


def contrastive_loss(
    q: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None = None,
    temperature: float = 0.05,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """(Eq. C) in-batch softmax: query ``i`` [B, H] against every positive [B, H] and hard negative
    [B, H]; the label is its own positive. ``exclude`` [B, B(+B)] bool drops candidates that are also
    relevant to the query (the label itself is never dropped)."""
    cands = pos if neg is None else torch.cat([pos, neg])  # [C, H]
    logits = q @ cands.T / temperature  # [B, C]
    labels = torch.arange(len(q), device=q.device)
    if exclude is not None:
        exclude = exclude.clone()
        exclude[labels, labels] = False
        logits = logits.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(logits, labels)


def load_mural(items: Any, config: MuralConfig, path: Any = None, seed: int = 0) -> Mural:
    """MURAL from a local BERT folder (default: the shipped all-MiniLM-L6-v2), offline; the aspect
    vocabulary from the corpus ``items``. The new weights (placeholder token rows, value projections
    or tables, gate, MLM head) are drawn under ``seed``, so equal seeds give equal models."""
    from consumers.retrieval.aspects import build_vocab
    from mining.lightpair.model import load_encoder

    tokenizer, encoder = load_encoder(path)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Mural(encoder, tokenizer, build_vocab(items, tokenizer, config.granularities), config)
