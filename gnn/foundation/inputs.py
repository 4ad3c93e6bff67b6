"""The aspects of a request and of an item, each a ``d``-vector: ID, text and sparse features.

S&R Multi-Domain Foundation (Gong et al., CIKM 2023, arXiv 2309.08939), §3.2: a sample's input is
three aspects per side, the ID embedding ``e_id``, the frozen language model's text feature
projected into the model's width ``e_txt = W_t t``, and the task-specific sparse features
``e_sp`` (here the mean of the embeddings of the row's sparse tokens: category path, brand, domain,
KG neighbours, user attributes). Every model in :mod:`gnn.foundation` (the foundation model and the
baselines) starts from this module, so their inputs are the same.
"""

from __future__ import annotations

import torch
from torch import nn

from gnn.foundation.features import Encoded

N_ASPECTS = 3  # id, text, sparse
TEXT_ASPECT = 1  # the index of the text aspect ("[CLS]" gate input)


class AspectInputs(nn.Module):
    """Sample indices → request aspects ``[B, 3, d]`` and item aspects ``[B, 3, d]``.

    ``use_text=False`` (the "no text features" ablation) zeroes the text aspect.
    """

    req_text: torch.Tensor  # buffers: the frozen inputs of every row
    item_text: torch.Tensor
    req_tokens: torch.Tensor
    item_tokens: torch.Tensor

    def __init__(self, enc: Encoded, dim: int, *, use_text: bool = True) -> None:
        super().__init__()
        self.enc, self.use_text = enc, use_text
        self.req_id = nn.Embedding(len(enc.request_ids), dim)
        self.item_id = nn.Embedding(len(enc.item_ids), dim)
        self.text = nn.Linear(enc.text_dim, dim)  # W_t, shared by queries/users and items
        self.tokens = nn.Embedding(len(enc.vocab), dim, padding_idx=0)
        for emb in (self.req_id, self.item_id, self.tokens):
            nn.init.normal_(emb.weight, std=0.05)
        self.register_buffer("req_text", enc.req_text, persistent=False)
        self.register_buffer("item_text", enc.item_text, persistent=False)
        self.register_buffer("req_tokens", enc.req_tokens, persistent=False)
        self.register_buffer("item_tokens", enc.item_tokens, persistent=False)

    def frozen_parts(self) -> list[nn.Module]:
        """What "freeze encoding" freezes: the text projection and the sparse-token table (the ID
        tables stay trainable: a cold-start domain's items have no pre-trained ID row)."""
        return [self.text, self.tokens]

    def _bag(self, tokens: torch.Tensor) -> torch.Tensor:
        emb: torch.Tensor = self.tokens(tokens)  # [B, L, d]
        n = (tokens > 0).sum(1, keepdim=True).clamp(min=1)
        return emb.sum(1) / n

    def forward(self, req: torch.Tensor, item: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """req, item: [B] row indices → (request aspects [B, 3, d], item aspects [B, 3, d])."""
        r_txt = self.text(self.req_text[req])
        i_txt = self.text(self.item_text[item])
        if not self.use_text:
            r_txt, i_txt = torch.zeros_like(r_txt), torch.zeros_like(i_txt)
        r = torch.stack([self.req_id(req), r_txt, self._bag(self.req_tokens[req])], 1)
        i = torch.stack([self.item_id(item), i_txt, self._bag(self.item_tokens[item])], 1)
        return r, i
