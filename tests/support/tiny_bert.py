"""A 2-layer, 32-wide BERT with MiniLM's tokenizer (read from the local package, offline)."""

from __future__ import annotations

from typing import Any

import torch


def tiny_bert(seed: int = 0, dropout: float = 0.1) -> tuple[Any, Any]:
    """(BertModel, tokenizer), seeded; ``dropout`` for hidden states and attention."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mining.lightpair.model import minilm_path

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertModel(config), tokenizer
